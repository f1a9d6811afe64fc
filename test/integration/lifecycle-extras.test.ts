/**
 * What the mesh needs around a task's life besides events: safe retries (Idempotency-Key), the
 * list filtered, what a task used, and retention. Against the real systemd.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForCollected, waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerSuite } from '../harness/suite.js';
import { startWithFault, storedRow } from '../harness/test-runner.js';

describe('safe retries with Idempotency-Key', () => {
  const suite = runnerSuite({}, { beforeCleanUp: (self) => self.runner.start().catch(() => {}) });
  const post = (key: string | undefined, body: unknown) =>
    fetch(`${suite.runner.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
      body: JSON.stringify(body),
    }).then(async (response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any }));

  const rawPost = (key: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL('/v1/tasks', suite.runner.baseUrl);
      const req = httpRequest(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': Buffer.from(key, 'latin1').toString('latin1') },
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ machine: 'echo', parameters: ['return 0'] }));
    });

  test('the same key and request give the same task, also after a restart; another request with it is 422; nothing more is started', async () => {
    const body = { machine: 'sleeper', parameters: { a: 1, b: [2, 3] } };
    const first = await post('power-on-lpar-7', body);
    assert.equal(first.status, 201);
    suite.started.add(first.body.taskId);
    const again = await post('power-on-lpar-7', { parameters: { b: [2, 3], a: 1 }, machine: 'sleeper' });
    assert.equal(again.status, 200, 'a replay, not a creation');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.taskId, first.body.taskId);
    assert.equal(again.headers.get('location'), `/v1/tasks/${first.body.taskId}`);

    await suite.runner.restart();
    const afterRestart = await post('power-on-lpar-7', body);
    assert.equal(afterRestart.status, 200);
    assert.equal(afterRestart.body.taskId, first.body.taskId);
    assert.equal(afterRestart.body.state, 'running');

    const other = await post('power-on-lpar-7', { machine: 'sleeper', parameters: { a: 2 } });
    assert.equal(other.status, 422);
    assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.match(other.body.detail, new RegExp(`started task ${first.body.taskId} for another request`));
    assert.doesNotMatch(other.body.detail, /"a"/, 'the parameters are not echoed');
    const sleepers = (await suite.api.get('/v1/tasks?view=full&machine=sleeper')).body as any[];
    assert.deepEqual(
      sleepers.map((task) => task.taskId),
      [first.body.taskId],
      'one task in all',
    );
  });

  test('a runner killed after starting the task, before answering: the retry with the key gets that task, nothing more is started', async () => {
    const sleepers = async () => (await suite.api.getAll<{ taskId: string }>('/v1/tasks?machine=sleeper')).map((task) => task.taskId);
    const before = (await sleepers()).length;
    await suite.runner.stop();
    await startWithFault(suite.runner, 'after-start');
    const body = { machine: 'sleeper', parameters: { lpar: 'crash-1' } };
    const lost = await post('crash-before-answer', body).catch((error: unknown) => error);
    assert.ok(lost instanceof Error, 'the runner died instead of answering');
    await eventually(
      'the runner dead',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'],
      (state) => state !== 'active',
    );
    await suite.runner.start();
    const retried = await post('crash-before-answer', body);
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal(retried.headers.get('idempotent-replayed'), 'true');
    assert.equal(retried.body.state, 'running', 'the task the first request started');
    suite.started.add(retried.body.taskId);
    assert.equal((await sleepers()).length, before + 1, 'one task in all for the two requests');
  });

  test('without the header nothing changes: two posts, two tasks (tessia-compatible); bad keys are 400', async () => {
    const a = await post(undefined, { machine: 'echo', parameters: ['return 0'] });
    const b = await post(undefined, { machine: 'echo', parameters: ['return 0'] });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.notEqual(a.body.taskId, b.body.taskId);
    // Sent as the bytes they are (fetch would refuse some itself): the runner must refuse each.
    for (const key of ['', 'x'.repeat(256), 'tab\there', 'x\u0080y']) {
      const refused = await rawPost(key);
      assert.equal(refused.status, 400, JSON.stringify(key));
      assert.match(refused.body, /Idempotency-Key/);
    }
  });

  test('a key is released with its task: after DELETE the same key starts a new task', async () => {
    const first = await post('once-more', { machine: 'echo', parameters: ['return 0'] });
    await waitForState(suite.api, first.body.taskId, ['exited']);
    assert.equal((await suite.api.delete(`/v1/tasks/${first.body.taskId}`)).status, 200);
    const second = await post('once-more', { machine: 'echo', parameters: ['return 0'] });
    assert.equal(second.status, 201);
    assert.notEqual(second.body.taskId, first.body.taskId);
  });
});

describe('the task list, filtered', () => {
  const suite = runnerSuite();

  test('by state, machine and creation time, paged with the filters kept in the Link; bad filters are 400', async () => {
    const before = new Date().toISOString();
    const done = await suite.start('echo', ['return 0']);
    const running = await suite.start('sleeper', null);
    await waitForState(suite.api, done.taskId, ['exited']);
    const ids = async (query: string) => (await suite.api.getAll<{ taskId: string }>(`/v1/tasks?${query}`)).map((task) => task.taskId);
    assert.deepEqual(await ids(`since=${before}&state=running`), [running.taskId]);
    assert.deepEqual(await ids(`since=${before}&state=exited,lost`), [done.taskId]);
    assert.deepEqual(await ids(`since=${before}&machine=sleeper`), [running.taskId]);
    assert.deepEqual(await ids(`until=${before}&machine=sleeper`), []);
    const firstPage = await suite.api.get(`/v1/tasks?since=${before}&limit=1&view=full`);
    assert.equal(firstPage.body.length, 1);
    assert.match(firstPage.headers.get('link') ?? '', new RegExp(`since=${encodeURIComponent(before)}.*after=\\d+`));
    // The newest first, a page at a time through the Link header (getAll follows it).
    assert.deepEqual(await ids(`since=${before}&order=newest&limit=1`), [running.taskId, done.taskId]);
    for (const query of ['state=sleeping', 'state=', 'machine=..%2Fetc', 'since=yesterday', 'until=2026-13-01T00:00:00Z', 'order=random']) {
      const reply = await suite.api.get(`/v1/tasks?${query}`);
      assert.equal(reply.status, 400, query);
    }
  });
});

describe('what a task used', () => {
  const suite = runnerSuite({ tasks: { usageSampleSec: 0.5 } });

  test('a running task shows its CPU, memory, peak and processes; its record keeps them when it ends', async () => {
    const task = await suite.start('uses-resources', null);
    const live = await eventually(
      'usage while it runs, its 48 MiB in',
      async () => (await suite.api.get(`/v1/tasks/${task.taskId}`)).body,
      (view) => (view.usage?.memoryBytes ?? 0) > 40 * 2 ** 20,
    );
    assert.equal(live.state, 'running');
    assert.ok(live.usage.tasks >= 1, JSON.stringify(live.usage));
    assert.ok(live.usage.cpuNsec > 0, JSON.stringify(live.usage));
    await waitForState(suite.api, task.taskId, ['exited'], 30_000);
    // systemd's CPU time is read after the end is recorded, before the unit is collected.
    await waitForCollected(suite.runner, task.unit);
    const usage = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body.usage;
    assert.ok(usage.memoryPeakBytes >= 48 * 2 ** 20, `the peak: ${usage.memoryPeakBytes}`);
    assert.ok(usage.cpuNsec >= live.usage.cpuNsec, 'CPU time only grows');
    assert.ok(usage.cpuNsec > 1e9, `about 3 s of CPU: ${usage.cpuNsec}`);
    const row = await storedRow(suite.runner, task.taskId);
    assert.deepEqual(JSON.parse(String(row?.['usage'])), usage, 'in the store');
  });
});

describe('retention', () => {
  const suite = runnerSuite({ retention: { maxFinished: 2, sweepMinutes: 0.02 } });

  test('keeps the newest finished tasks, prunes the rest with their events and directories, never an active one; counted in /metrics', async () => {
    const running = await suite.start('sleeper', null);
    const finished: string[] = [];
    for (let i = 0; i < 4; i++) {
      const task = await suite.start('echo', ['return 0']);
      await waitForState(suite.api, task.taskId, ['exited']);
      finished.push(task.taskId);
    }
    const directory = (taskId: string) => `${suite.runner.systemd.root}/var/lib/private/tessia-tasks/${taskId}`;
    await eventually(
      'the oldest two pruned',
      async () => Promise.all(finished.map(async (taskId) => (await suite.api.get(`/v1/tasks/${taskId}`)).status)),
      (statuses) => statuses.join() === '404,404,200,200',
    );
    assert.equal((await suite.api.get(`/v1/tasks/${running.taskId}`)).body.state, 'running', 'an active task is never pruned');
    for (const taskId of finished.slice(0, 2)) {
      assert.equal(await storedRow(suite.runner, taskId), null);
      assert.equal(existsSync(directory(taskId)), false, `directory of ${taskId} gone`);
      const events = await fetch(`${suite.runner.baseUrl}/v1/events?after=0&follow=false&task=${taskId}`).then((r) => r.text());
      assert.equal(events, '', 'its events gone');
    }
    assert.ok(existsSync(directory(finished[3] ?? '')), 'a kept task keeps its directory');
    const metrics = await fetch(`${suite.runner.baseUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /tessia_tasks_pruned_total\{reason="count",service="tessia-task-runner"\} [2-9]/);
  });
});
