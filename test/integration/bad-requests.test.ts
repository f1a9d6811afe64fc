/** Bad input gets a clear 4xx {detail} and changes nothing: no record, no unit. Browsers get nowhere. */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { client, type Api } from '../../src/embedded/api-client.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
import { runnerSuite } from '../harness/suite.js';
import { startTestRunner } from '../harness/test-runner.js';
import { unitsOfTasks } from '../../src/embedded/runner-tasks.js';

describe('requests the runner refuses', () => {
  let runner: RunnerService;
  let api: Api;

  before(async () => {
    runner = await startTestRunner();
    api = client(runner.baseUrl);
  });
  after(async () => {
    // Undefined when before() failed.
    await (runner as RunnerService | undefined)?.stop();
  });

  async function assertNothingChanged(): Promise<void> {
    assert.deepEqual((await api.get('/v1/tasks')).body, []);
    assert.deepEqual(await unitsOfTasks(runner), []);
  }

  const refused: [string, unknown, RegExp][] = [
    ['a body without machine', { parameters: [] }, /machine/],
    ['a body without parameters', { machine: 'echo' }, /parameters/],
    ['an unknown machine', { machine: 'rm-rf', parameters: [] }, /unknown machine "rm-rf"/],
    ['extra keys', { machine: 'echo', parameters: [], ExecStart: '/bin/sh' }, /unknown key.*ExecStart/],
    ['a machine name that is not a string', { machine: ['echo'], parameters: [] }, /machine/],
    ['a machine name shaped like a unit', { machine: '../../etc/passwd', parameters: [] }, /unknown machine/],
    ['an echo syntax error', { machine: 'echo', parameters: ['echo fine', 'sleep forever'] }, /line 2: SLEEP argument must be a number/],
    [
      'an unknown echo command',
      { machine: 'echo', parameters: ['echo fine', '', 'dance'] },
      /line 3: Invalid command \(expected one of ECHO/,
    ],
    ['a body that is a list', [{ machine: 'echo', parameters: [] }], /expected object/i],
    ['a body that is a string', 'echo', /expected object/i],
  ];
  for (const [what, body, detail] of refused) {
    test(`${what} is refused with 400 and a detail`, async () => {
      const reply = await api.post('/v1/tasks', body);
      assert.equal(reply.status, 400, JSON.stringify(reply.body));
      assert.match(reply.body.detail, detail);
      await assertNothingChanged();
    });
  }

  test('a body that is not JSON is refused with 400', async () => {
    const reply = await api.postRaw('/v1/tasks', '{"machine": "echo", parameters');
    assert.equal(reply.status, 400);
    assert.match(reply.body.detail, /not valid JSON/);
    await assertNothingChanged();
  });

  test('an empty body is refused with 400', async () => {
    const reply = await api.postRaw('/v1/tasks', '');
    assert.equal(reply.status, 400);
    assert.equal(typeof reply.body.detail, 'string');
    await assertNothingChanged();
  });

  test('a body over the size limit is refused with 413', async () => {
    const reply = await api.post('/v1/tasks', { machine: 'echo', parameters: ['echo ' + 'x'.repeat(2 * 1024 * 1024)] });
    assert.equal(reply.status, 413);
    assert.equal(typeof reply.body.detail, 'string');
    await assertNothingChanged();
  });

  test('an unknown list view is refused with 400', async () => {
    const reply = await api.get('/v1/tasks?view=everything');
    assert.equal(reply.status, 400);
    assert.match(reply.body.detail, /view/);
  });

  for (const id of ['deadbeef', 'some-unspecified-id', '..%2F..%2Fetc', 'DEADBEEF', 'x'.repeat(300)]) {
    test(`the unknown task id "${id.slice(0, 20)}" is 404 for query, stop and delete`, async () => {
      for (const reply of [await api.get(`/v1/tasks/${id}`), await api.post(`/v1/tasks/${id}/stop`), await api.delete(`/v1/tasks/${id}`)]) {
        assert.equal(reply.status, 404);
        assert.equal(typeof reply.body.detail, 'string');
      }
      await assertNothingChanged();
    });
  }

  test('an unknown endpoint is 404 with a detail', async () => {
    const reply = await api.get('/v2/tasks');
    assert.equal(reply.status, 404);
    assert.equal(typeof reply.body.detail, 'string');
  });
});

describe('requests a browser could make', () => {
  const socketPath = `/run/tessia-test/browsers-${Date.now()}.sock`;
  const suite = runnerSuite({
    allowedHosts: ['runner1.mesh.example'],
    allowedOrigins: ['https://console.mesh.example'],
    unixSocket: { path: socketPath, mode: '0600' },
  });

  /** A request with the headers a test chooses (fetch will not let it set Host), over TCP or the Unix socket. */
  function send(method: string, path: string, headers: Record<string, string>, body?: string, overSocket = false) {
    return new Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
      const url = new URL(suite.runner.baseUrl);
      const where = overSocket ? { socketPath: `${suite.runner.systemd.root}${socketPath}` } : { host: url.hostname, port: url.port };
      const sent = httpRequest({ ...where, method, path, headers }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, headers: response.headers }),
        );
      });
      sent.on('error', reject);
      sent.end(body);
    });
  }

  const NEW_TASK = JSON.stringify({ machine: 'echo', parameters: ['echo from a web page'] });

  async function assertNothingCreated(): Promise<void> {
    assert.deepEqual((await suite.api.get('/v1/tasks')).body, []);
    assert.deepEqual(await unitsOfTasks(suite.runner), []);
  }

  test('a start with a body that is not declared JSON (text/plain, a form, none) is 415, and nothing starts', async () => {
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', undefined]) {
      const reply = await send('POST', '/v1/tasks', type === undefined ? {} : { 'content-type': type }, NEW_TASK);
      assert.equal(reply.status, 415, `${type}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body.code, 'UNSUPPORTED_MEDIA_TYPE');
      assert.match(reply.body.detail, /must be JSON, sent as Content-Type: application\/json/);
    }
    await assertNothingCreated();
  });

  test('a request from a web page of another origin is 403, and nothing starts', async () => {
    for (const origin of ['http://evil.example', 'null', suite.runner.baseUrl]) {
      const reply = await send('POST', '/v1/tasks', { origin, 'content-type': 'application/json' }, NEW_TASK);
      assert.equal(reply.status, 403, origin);
      assert.equal(reply.body.code, 'ORIGIN_NOT_ALLOWED');
      assert.equal(reply.headers['access-control-allow-origin'], undefined);
    }
    assert.equal((await send('GET', '/v1/tasks', { origin: 'http://evil.example' })).status, 403, 'reads too');
    await assertNothingCreated();
  });

  test("a Host that is not one of the runner's names is 421 (DNS rebinding), reads and starts alike, and nothing starts", async () => {
    for (const host of ['evil.example', `evil.example:${new URL(suite.runner.baseUrl).port}`, '127.0.0.1.nip.io']) {
      const read = await send('GET', '/v1/tasks', { host });
      assert.equal(read.status, 421, host);
      assert.equal(read.body.code, 'HOST_NOT_ALLOWED');
      assert.match(read.body.detail, /is not a name of this runner.*allowedHosts/);
      assert.equal((await send('POST', '/v1/tasks', { host, 'content-type': 'application/json' }, NEW_TASK)).status, 421);
    }
    assert.equal((await send('GET', '/metrics', { host: 'evil.example' })).status, 421);
    await assertNothingCreated();
  });

  test('its own names are served: the listen address, localhost, its host name and allowedHosts; the Unix socket by any', async () => {
    const port = new URL(suite.runner.baseUrl).port;
    const ownName = (await suite.runner.systemd.run(['cat', '/proc/sys/kernel/hostname'])).stdout.trim();
    assert.ok(ownName !== '');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, ownName, 'runner1.mesh.example:7356']) {
      const reply = await send('GET', '/v1/tasks', { host });
      assert.equal(reply.status, 200, host);
    }
    const overSocket = await send('GET', '/v1/tasks', { host: 'evil.example' }, undefined, true);
    assert.equal(overSocket.status, 200, 'no browser reaches the Unix socket');
  });

  test('an allowed origin starts a task, with CORS headers, after a preflight', async () => {
    const origin = 'https://console.mesh.example';
    const preflight = await send('OPTIONS', '/v1/tasks', {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], origin);
    const created = await send('POST', '/v1/tasks', { origin, 'content-type': 'application/json; charset=utf-8' }, NEW_TASK);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    suite.started.add(created.body.taskId);
    assert.equal(created.headers['access-control-allow-origin'], origin);
    // A stop has no body, so it needs no Content-Type.
    assert.equal((await send('POST', `/v1/tasks/${created.body.taskId}/stop`, {})).status, 200);
  });
});
