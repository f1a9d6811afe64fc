/** Each request's logger and the line a request leaves when answered (src/api/request-log.ts). */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Request, Response } from 'express';
import { pino } from 'pino';
import { requestLog } from '../../src/api/request-log.js';

/** Requests through the request log (`logged`: which leave a line), answered by `answer`; the lines written. */
async function linesOf(
  requests: { method: string; path: string }[],
  logged: (request: Request) => boolean,
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const middleware = requestLog(pino(sink), logged);
  const server = createServer((req, res) => {
    middleware(req as Request, res as Response, () => answer(req, res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  for (const { method, path } of requests) {
    await new Promise<void>((resolve, reject) => {
      const sent = request({ port, method, path }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      sent.on('error', reject);
      sent.end();
    });
  }
  server.close();
  await once(server, 'close');
  return lines;
}

describe('the request log', () => {
  it('leaves a line for the requests it is told to, with an id of its own for each request', async () => {
    const lines = await linesOf(
      [
        { method: 'GET', path: '/v1/tasks' },
        { method: 'POST', path: '/v1/tasks' },
        { method: 'POST', path: '/v1/tasks/x/stop' },
      ],
      (req) => req.method !== 'GET',
      (_req, res) => res.end('ok'),
    );
    assert.deepEqual(
      lines.map((line) => [line['msg'], (line['req'] as { url?: string } | undefined)?.url]),
      [
        ['request completed', '/v1/tasks'],
        ['request completed', '/v1/tasks/x/stop'],
      ],
      'no line for the GET',
    );
    assert.notEqual(lines[0]?.['reqId'], lines[1]?.['reqId']);
  });

  it('says a request errored when its answer is a 5xx, with the error', async () => {
    const lines = await linesOf(
      [{ method: 'POST', path: '/v1/tasks' }],
      () => true,
      (req, res) => {
        req.log.info('from the handler');
        res.statusCode = 503;
        res.end();
      },
    );
    const [fromHandler, errored] = lines;
    assert.ok(fromHandler && errored, `two lines: ${JSON.stringify(lines)}`);
    assert.equal(fromHandler['msg'], 'from the handler');
    assert.equal(errored['msg'], 'request errored');
    assert.match(String((errored['err'] as { message?: string } | undefined)?.message), /failed with status code 503/);
    assert.equal(fromHandler['reqId'], errored['reqId']);
  });
});
