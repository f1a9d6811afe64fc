/** Bad input gets a clear 4xx {detail} and changes nothing: no record, no unit. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client, type Api } from '../../src/embedded/api-client.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
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
