/**
 * Hostile input: over 10 000 generated requests against the running service — malformed JSON,
 * wrong types, huge and deep bodies, unit-name and path injection in ids and machines, control
 * characters, bad cursors and query values, slow clients. Not one 5xx, the service stays up and
 * consistent, and no rejected request creates a unit or a record.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { client } from '../../src/embedded/api-client.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
import { startTestRunner } from '../harness/test-runner.js';
import { unitsOfTasks } from '../../src/embedded/runner-tasks.js';

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const INJECTIONS = [
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fshadow',
  'tessia-task-deadbeef.service',
  'deadbeef.service; rm -rf /',
  '$(reboot)',
  '`id`',
  'deadbeef\nExecStart=/bin/sh',
  'dead%00beef',
  '%0aExecStart%3d%2fbin%2fsh',
  'DEADBEEF',
  '-1',
  'a'.repeat(5000),
  '\u0000\u0001\u001f',
  'Ω≈ç√∫',
  '{{7*7}}',
  '<script>',
  'null',
  'undefined',
  '--after-cursor=x',
  'init.scope',
  'dbus.service',
  '-.slice',
  'tessia-tasks.slice',
];

describe('hostile input', { timeout: 15 * 60_000 }, () => {
  let runner: RunnerService;
  before(async () => {
    runner = await startTestRunner({ limits: { maxActiveTasks: 5, maxParameterBytes: 4096, maxJsonDepth: 32 } });
  });
  after(async () => {
    // Undefined when before() failed.
    await (runner as RunnerService | undefined)?.stop();
  });

  test('10 000 generated hostile requests: no 5xx, nothing created, the service up and consistent', async () => {
    const api = client(runner.baseUrl);
    const next = random(20261127);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    const unitsBefore = await unitsOfTasks(runner);
    const listBefore = (await api.get('/v1/tasks')).body;

    const bodies: (() => string)[] = [
      () => '{"machine": "echo", "parameters": ',
      () => '{"machine": "echo" "parameters": []}',
      () => 'null',
      () => '[]',
      () => '"echo"',
      () => '42',
      () => '{}',
      () => JSON.stringify({ machine: pick(INJECTIONS), parameters: [] }),
      () => JSON.stringify({ machine: 'echo', parameters: [pick(['sleep', 'RETURN x', 'LOG loud x', 'USE x', 'ECHO', 'dance'])] }),
      () => JSON.stringify({ machine: 'echo', parameters: ['echo x'], ExecStart: '/bin/sh', Slice: '-.slice' }),
      () => JSON.stringify({ machine: 'echo', parameters: ['echo x'], User: 'root', properties: { DynamicUser: false } }),
      () => JSON.stringify({ machine: 123, parameters: [] }),
      () => JSON.stringify({ machine: { $ne: null }, parameters: [] }),
      () => JSON.stringify({ machine: 'echo', parameters: ['echo ' + 'x'.repeat(5000)] }),
      () => '['.repeat(1 + Math.floor(next() * 5000)) + ']'.repeat(10),
      () => JSON.stringify({ machine: 'echo', parameters: JSON.parse('['.repeat(40) + ']'.repeat(40)) }),
      () => '{"machine": "echo", "parameters": ["\u0000\u0007\u001b[31m"], "machine": "rm"}',
      () => '\u0000\u0001\u0002',
      () => Buffer.from([0xff, 0xfe, 0xfd]).toString('latin1'),
    ];
    const queries = [
      'follow=maybe',
      'tail=-5',
      'tail=1e9',
      'tail=0x10',
      'priority=99',
      'priority=%00',
      'since=yesterday',
      'until=2026-02-30T25:61:00Z',
      'after=' + encodeURIComponent('s=x;i=y'),
      'after=' + encodeURIComponent(pick(INJECTIONS)),
      'fields=' + encodeURIComponent('A,B;rm'),
      'format=%0d%0a',
      'follow=true&follow=false',
      'tail=1&tail=2',
      'x=' + 'y'.repeat(4000),
    ];

    const statuses = new Map<number, number>();
    let sent = 0;
    const one = async () => {
      const kind = next();
      let method = 'GET';
      let path = '/v1/tasks';
      let body: string | undefined;
      const headers: Record<string, string> = {};
      if (kind < 0.45) {
        method = 'POST';
        body = pick(bodies)();
        headers['content-type'] = pick([
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
        ]);
      } else if (kind < 0.75) {
        const id = encodeURIComponent(pick(INJECTIONS));
        [method, path] = pick([
          ['GET', `/v1/tasks/${id}`],
          ['POST', `/v1/tasks/${id}/stop`],
          ['DELETE', `/v1/tasks/${id}`],
          ['GET', `/v1/tasks/${id}/logs`],
        ]);
      } else if (kind < 0.9) {
        path = `/v1/tasks/deadbeef/logs?${pick(queries)}`;
      } else if (kind < 0.95) {
        [method, path] = pick([
          ['PUT', '/v1/tasks'],
          ['PATCH', '/v1/tasks/x'],
          ['GET', '/v1/../../etc/passwd'],
          ['GET', `/${'a/'.repeat(500)}`],
          ['POST', '/v1/tasks?view=full'],
        ]);
      } else {
        method = 'POST';
        body = JSON.stringify({ machine: 'echo', parameters: ['x'.repeat(2 * 1024 * 1024)] });
        headers['content-type'] = 'application/json';
      }
      const init: RequestInit = { method, headers };
      if (body !== undefined) init.body = body;
      const response = await fetch(runner.baseUrl + path, init).catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error)),
      );
      sent += 1;
      const status = response instanceof Error ? -1 : response.status;
      if (!(response instanceof Error)) await response.arrayBuffer();
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    };

    // Slow clients at the same time: headers that never finish, a body that never comes.
    const slow = Array.from({ length: 8 }, (_, i) => {
      const socket = connect(Number(new URL(runner.baseUrl).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(
        i % 2
          ? 'POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"mach'
          : 'GET /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: ',
      );
      return socket;
    });

    const workers = Array.from({ length: 16 }, async () => {
      while (sent < 10_000) await one();
    });
    await Promise.all(workers);
    for (const socket of slow) socket.destroy();

    const summary = JSON.stringify(Object.fromEntries(statuses));
    assert.ok(sent >= 10_000);
    assert.equal(statuses.get(-1) ?? 0, 0, `connection errors: ${summary}`);
    for (const [status] of statuses) assert.ok(status < 500, `a ${status} answer: ${summary}`);
    assert.deepEqual((await api.get('/v1/')).body, { success: true }, 'the service is up');
    assert.deepEqual((await api.get('/v1/tasks')).body, listBefore, 'no record created');
    assert.deepEqual(await unitsOfTasks(runner), unitsBefore, 'no unit created');
    // And it still works.
    const task = await api.post('/v1/tasks', { machine: 'echo', parameters: ['echo still fine'] });
    assert.equal(task.status, 201);
    process.stderr.write(`hostile input: ${sent} requests, statuses ${summary}\n`);
  });

  test('beyond the active-task cap a start is 429 with Retry-After, and nothing is created', async () => {
    const api = client(runner.baseUrl);
    for (let i = 0; i < 100 && (await unitsOfTasks(runner)).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
    const created: string[] = [];
    for (;;) {
      const reply = await api.post('/v1/tasks', { machine: 'echo', parameters: ['sleep 60'] });
      if (reply.status !== 201) {
        assert.equal(reply.status, 429);
        assert.equal(reply.headers.get('retry-after'), '5');
        assert.match(reply.body.detail, /5 tasks are active/);
        break;
      }
      created.push(reply.body.taskId);
      assert.ok(created.length <= 5);
    }
    assert.equal(created.length, 5);
    assert.equal((await unitsOfTasks(runner)).length, 5);
    for (const taskId of created) await api.delete(`/v1/tasks/${taskId}`);
    for (let i = 0; i < 100 && (await unitsOfTasks(runner)).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(await unitsOfTasks(runner), []);
  });

  test('parameters over the size limit are 413, and too deep a body is 400', async () => {
    const api = client(runner.baseUrl);
    const big = await api.post('/v1/tasks', { machine: 'echo', parameters: ['echo ' + 'x'.repeat(5000)] });
    assert.equal(big.status, 413);
    assert.match(big.body.detail, /parameters are \d+ bytes as JSON, more than the 4096 allowed/);
    const deep = await api.postRaw(
      '/v1/tasks',
      JSON.stringify({ machine: 'echo', parameters: JSON.parse('['.repeat(40) + ']'.repeat(40)) }),
    );
    assert.equal(deep.status, 400);
    assert.match(deep.body.detail, /nests deeper than 32 levels/);
    assert.deepEqual(await unitsOfTasks(runner), []);
  });
});
