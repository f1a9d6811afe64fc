/** The original tessia-mesh task runner's API tests (src/task_runner/tests/test_api.py), against systemd. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client } from '../../src/embedded/api-client.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
import { startTestRunner } from '../harness/test-runner.js';
import { cleanUp, waitForCollected, waitForState } from '../../src/embedded/runner-tasks.js';

const ECHO_MACHINE = {
  machine: 'echo',
  parameters: `
            echo Machine starting
            sleep 5
            echo Machine stopping
        `,
};

describe('the tessia v1 API', () => {
  let runner: RunnerService;
  let api: ReturnType<typeof client>;
  const started: string[] = [];

  before(async () => {
    // A fresh runner with an empty store, as the original tests get from a fresh app.
    runner = await startTestRunner();
    api = client(runner.baseUrl);
  });
  after(async () => {
    await cleanUp(runner, api, started);
    // Undefined when before() failed.
    await (runner as RunnerService | undefined)?.stop();
  });

  /**
   * The original tests list exactly the tasks they made (each got a fresh app): forget every task
   * the store holds, so a test needs nothing from an earlier one and also runs alone.
   */
  async function forgetAllTasks() {
    for (const { taskId } of (await api.get('/v1/tasks')).body as { taskId: string }[]) {
      await api.post(`/v1/tasks/${taskId}/stop`);
      await waitForState(api, taskId, ['exited', 'lost']);
      assert.equal((await api.delete(`/v1/tasks/${taskId}`)).status, 200);
      await waitForCollected(runner, `tessia-task-${taskId}.service`);
      if (started.includes(taskId)) started.splice(started.indexOf(taskId), 1);
    }
    assert.deepEqual((await api.get('/v1/tasks')).body, [], 'no task left from an earlier test');
  }

  async function create() {
    const reply = await api.post('/v1/tasks', ECHO_MACHINE);
    if (reply.body?.taskId) started.push(reply.body.taskId);
    return reply;
  }

  test('api info responses are valid', async () => {
    const info = (await api.get('/')).body;
    const schema = (await api.get(`${info.apis[0].root}/schema`)).body;
    assert.equal(info.name, 'task_runner');
    assert.ok('version' in info.apis[0]);
    assert.ok('min_version' in info.apis[0]);
    assert.ok('/' in schema);
    assert.deepEqual((await api.get('/v1/')).body, { success: true });
  });

  test('an invalid request (wrong schema) is rejected with 400', async () => {
    const reply = await api.post('/v1/tasks', { 'without-machine-parameters': 'request-is-invalid' });
    assert.equal(reply.status, 400);
    assert.equal(typeof reply.body.detail, 'string');
  });

  test('a task that does not exist is 404', async () => {
    const reply = await api.get('/v1/tasks/some-unspecified-id');
    assert.equal(reply.status, 404);
    assert.equal(typeof reply.body.detail, 'string');
  });

  test('the echo machine can be started and stopped', async () => {
    const created = await create();
    const status = await api.get(`/v1/tasks/${created.body.taskId}`);
    const stopped = await api.post(`/v1/tasks/${created.body.taskId}/stop`);
    assert.equal(created.status, 201);
    assert.ok(created.body.taskId);
    assert.equal(status.status, 200);
    assert.equal(status.body.taskId, created.body.taskId);
    assert.ok(status.body.state);
    assert.equal(status.body.state, 'running', 'a start answers once the unit runs');
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.taskId, created.body.taskId);
    assert.equal(stopped.body.stopRequested, true);
    assert.ok(['stopping', 'exited'].includes(stopped.body.state), stopped.body.state);
  });

  test('two tasks run in parallel and are listed in creation order', async () => {
    await forgetAllTasks();
    const task1 = (await create()).body;
    const task2 = (await create()).body;
    const listed = (await api.get('/v1/tasks/')).body;
    await api.post(`/v1/tasks/${task1.taskId}/stop`);
    await api.post(`/v1/tasks/${task2.taskId}/stop`);
    assert.deepEqual(listed, [
      { taskId: task1.taskId, state: 'running' },
      { taskId: task2.taskId, state: 'running' },
    ]);
    assert.notEqual(task1.taskId, task2.taskId);
    for (const taskId of [task1.taskId, task2.taskId]) {
      await waitForState(api, taskId, ['exited']);
      await api.delete(`/v1/tasks/${taskId}`);
    }
  });

  test('a removed running task disappears from the list', async () => {
    await forgetAllTasks();
    const task1 = (await create()).body;
    const task2 = (await create()).body;
    const running = (await api.get('/v1/tasks/')).body;
    await api.post(`/v1/tasks/${task1.taskId}/stop`);
    await api.delete(`/v1/tasks/${task1.taskId}`);
    const remaining = (await api.get('/v1/tasks/')).body;
    await api.post(`/v1/tasks/${task2.taskId}/stop`);
    assert.deepEqual(running, [
      { taskId: task1.taskId, state: 'running' },
      { taskId: task2.taskId, state: 'running' },
    ]);
    assert.deepEqual(remaining, [{ taskId: task2.taskId, state: 'running' }]);
    started.splice(started.indexOf(task1.taskId), 1);
    await waitForCollected(runner, `tessia-task-${task1.taskId}.service`);
  });
});
