/** Credentials in request and response headers never reach a log line (a change's request is logged with its headers). */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Request, Response } from 'express';
import { requestLog } from '../../src/api/request-log.js';
import { REDACTED_PATHS } from '../../src/log.js';

const SECRETS = {
  authorization: 'Bearer tok-authorization-1f2e3d',
  'proxy-authorization': 'Basic cHJveHktc2VjcmV0LTli',
  cookie: 'session=cookie-secret-7a6b',
};
const SET_COOKIE = 'session=set-cookie-secret-5c4d';

/** One request through the runner's request log with its redaction; the log lines written. */
async function loggedLines(): Promise<string[]> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink);
  const middleware = requestLog(log, () => true);
  const server = createServer((req, res) => {
    middleware(req as Request, res as Response, () => {});
    req.log.info({ req }, 'a line of the request logger with the request');
    res.setHeader('set-cookie', SET_COOKIE);
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const sent = request({ port, method: 'POST', path: '/v1/tasks', headers: { ...SECRETS, 'x-marker': 'headers-are-logged' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    sent.on('error', reject);
    sent.end();
  });
  server.close();
  await once(server, 'close');
  return lines;
}

describe('the log redaction', () => {
  it('logs request and response headers, but not Authorization, Proxy-Authorization, Cookie or Set-Cookie.', async () => {
    const lines = await loggedLines();
    assert.equal(lines.length, 2, 'the line of the request logger and "request completed"');
    for (const line of lines) {
      const record = JSON.parse(line) as { req: { headers: Record<string, string> } };
      assert.equal(record.req.headers['x-marker'], 'headers-are-logged', 'headers are logged: the redaction is what keeps the secrets out');
      for (const name of Object.keys(SECRETS)) assert.equal(record.req.headers[name], '[redacted]', name);
      for (const secret of [...Object.values(SECRETS), SET_COOKIE]) assert.ok(!line.includes(secret), `${secret} in ${line}`);
    }
    const [first, completed] = lines.map(
      (line) => JSON.parse(line) as { msg?: string; reqId?: number; res?: { statusCode?: number; headers?: Record<string, string> } },
    );
    assert.ok(completed?.res, 'the answer is in the line');
    assert.equal(completed.res.headers?.['set-cookie'], '[redacted]');
    assert.equal(completed.res.statusCode, 200);
    assert.equal(completed.msg, 'request completed');
    assert.equal(completed.reqId, first?.reqId, 'both lines carry the request id');
    assert.equal(typeof completed.reqId, 'number');
  });
});
