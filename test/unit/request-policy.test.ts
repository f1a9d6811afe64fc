/** The Host, Origin and Content-Type checks that keep browsers from driving the runner, over real HTTP. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { errorHandler } from '../../src/api/errors.js';
import { checkHost, checkOrigin, hostOfHeader, jsonBodiesOnly, normalizeOrigin, requestPolicy } from '../../src/api/request-policy.js';

let server: Server;
let port: number;
const reached: string[] = [];

before(async () => {
  const policy = requestPolicy(['0.0.0.0'], ['runner.mesh.example', '10.1.2.3'], ['https://console.mesh.example']);
  const app = express();
  app.use(
    checkHost(() => policy),
    checkOrigin(() => policy),
    jsonBodiesOnly,
  );
  app.all('/v1/tasks', (request, response) => {
    reached.push(request.method);
    response.json({ reached: true });
  });
  app.use(errorHandler);
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.close();
});

interface Answer {
  status: number;
  body: { detail?: string; code?: string; reached?: boolean };
  headers: Record<string, string | string[] | undefined>;
}

function send(method: string, headers: OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = httpRequest(
      { host: '127.0.0.1', port, method, path: '/v1/tasks', headers: { host: `127.0.0.1:${port}`, ...headers } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: text ? (JSON.parse(text) as Answer['body']) : {}, headers: response.headers }),
        );
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

const JSON_BODY = '{"machine":"echo","parameters":[]}';

describe('the Host check (DNS rebinding)', () => {
  for (const host of [
    '127.0.0.1',
    '127.0.0.1:7356',
    'localhost:7356',
    'LOCALHOST',
    'localhost.',
    '[::1]:7356',
    hostname(),
    'runner.mesh.example:443',
    '10.1.2.3',
  ]) {
    it(`accepts Host: ${host}.`, async () => {
      assert.equal((await send('GET', { host })).status, 200);
    });
  }

  for (const host of [
    'evil.example',
    'evil.example:7356',
    '127.0.0.1.evil.example',
    'runner.mesh.example.evil',
    '0.0.0.0',
    '10.1.2.4',
    'localhost@evil',
  ]) {
    it(`refuses Host: "${host}" with 421 and a detail naming allowedHosts, before the request reaches a route.`, async () => {
      const before = reached.length;
      const answer = await send('POST', { host, 'content-type': 'application/json' }, JSON_BODY);
      assert.equal(answer.status, 421);
      assert.equal(answer.body.code, 'HOST_NOT_ALLOWED');
      assert.match(answer.body.detail ?? '', /is not a name of this runner.*allowedHosts/);
      assert.equal(reached.length, before);
    });
  }

  it('reads the host of a Host header: names, ports, IPv6 in brackets; undefined when malformed.', () => {
    assert.equal(hostOfHeader('Runner.Example:80'), 'runner.example');
    assert.equal(hostOfHeader('[::1]:7356'), '::1');
    assert.equal(hostOfHeader('[::ffff:127.0.0.1]'), '127.0.0.1');
    assert.equal(hostOfHeader('::1'), undefined);
    assert.equal(hostOfHeader('a:b:c'), undefined);
    assert.equal(hostOfHeader('host:99999999'), undefined);
  });
});

describe('the Origin check', () => {
  it('lets requests without an Origin through (curl, the CLI, the mesh).', async () => {
    assert.equal((await send('POST', { 'content-type': 'application/json' }, JSON_BODY)).status, 200);
  });

  for (const origin of [
    'http://evil.example',
    'null',
    'https://console.mesh.example.evil',
    'http://console.mesh.example',
    'http://127.0.0.1:7356',
    'garbage',
  ]) {
    it(`refuses Origin: ${origin} with 403, before the request reaches a route.`, async () => {
      const before = reached.length;
      const answer = await send('POST', { origin, 'content-type': 'application/json' }, JSON_BODY);
      assert.equal(answer.status, 403);
      assert.equal(answer.body.code, 'ORIGIN_NOT_ALLOWED');
      assert.match(answer.body.detail ?? '', /allowedOrigins/);
      assert.equal(answer.headers['access-control-allow-origin'], undefined);
      assert.equal(reached.length, before);
    });
  }

  it('serves an allowed origin with CORS headers, and answers its preflight.', async () => {
    const answer = await send('GET', { origin: 'https://console.mesh.example' });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['access-control-allow-origin'], 'https://console.mesh.example');
    assert.match(String(answer.headers['vary']), /Origin/);
    const before = reached.length;
    const preflight = await send('OPTIONS', {
      origin: 'https://console.mesh.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    });
    assert.equal(preflight.status, 204);
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    assert.match(String(preflight.headers['access-control-allow-headers']), /Content-Type/);
    assert.equal(reached.length, before, 'a preflight reaches no route');
  });

  it('compares origins as browsers serialize them.', () => {
    assert.equal(normalizeOrigin('HTTPS://Console.Mesh.Example:443'), 'https://console.mesh.example');
    assert.equal(normalizeOrigin('null'), undefined);
    assert.equal(normalizeOrigin('file:///etc'), undefined);
  });
});

describe('the Content-Type of a body', () => {
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"']) {
    it(`accepts a body sent as ${type}.`, async () => {
      assert.equal((await send('POST', { 'content-type': type }, JSON_BODY)).status, 200);
    });
  }

  for (const type of [
    'text/plain',
    'text/plain;charset=UTF-8',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonx',
    'application/json; foo=bar',
    'application/merge-patch+json',
  ]) {
    it(`refuses a body sent as ${type} with 415, before the request reaches a route.`, async () => {
      const before = reached.length;
      const answer = await send('POST', { 'content-type': type }, JSON_BODY);
      assert.equal(answer.status, 415);
      assert.equal(answer.body.code, 'UNSUPPORTED_MEDIA_TYPE');
      assert.match(answer.body.detail ?? '', /must be JSON, sent as Content-Type: application\/json/);
      assert.equal(reached.length, before);
    });
  }

  it('refuses a body without a Content-Type, chunked or not, with 415.', async () => {
    assert.equal((await send('POST', { 'content-length': String(JSON_BODY.length) }, JSON_BODY)).status, 415);
    assert.equal((await send('DELETE', { 'transfer-encoding': 'chunked' }, JSON_BODY)).status, 415);
  });

  it('needs no Content-Type for a request without a body (a stop, a delete).', async () => {
    assert.equal((await send('POST', {})).status, 200);
    assert.equal((await send('DELETE', { 'content-length': '0' })).status, 200);
  });
});
