/** What bounds the runner's work for a client: concurrent log streams, and the task list a page at a time. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Reply } from '../../src/embedded/api-client.js';
import { eventually } from '../../src/embedded/eventually.js';
import { followLines } from '../../src/embedded/api-streams.js';
import { runnerSuite } from '../harness/suite.js';
import { waitForState } from '../../src/embedded/runner-tasks.js';

describe('the cap on log streams', () => {
  const suite = runnerSuite({ limits: { maxLogStreams: 2 } });

  test('beyond limits.maxLogStreams a stream is 429 with Retry-After and a code, and a slot frees when a stream ends', async () => {
    const task = await suite.start('echo', ['echo streamed', 'sleep 60']);
    const url = `${suite.runner.baseUrl}/v1/tasks/${task.taskId}/logs?follow=true`;
    const counts = [0, 0];
    const streams = counts.map((_, index) => followLines(url, () => (counts[index] = (counts[index] ?? 0) + 1)));
    await eventually(
      'both streams running',
      () => counts,
      (seen) => seen.every((count) => count > 0),
    );
    const refused = await suite.api.get(`/v1/tasks/${task.taskId}/logs`);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'TOO_MANY_LOG_STREAMS');
    assert.match(refused.body.detail, /2 log streams are open already \(limits\.maxLogStreams\)/);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 200, 'other requests are served');

    streams[0]?.abort();
    await streams[0]?.done;
    const again = await eventually(
      'a stream served again',
      () => suite.api.get(`/v1/tasks/${task.taskId}/logs`),
      (reply) => reply.status !== 429,
    );
    assert.equal(again.status, 200);
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal(await streams[1]?.done, 200, 'the followed stream ends with the task');
    await waitForState(suite.api, task.taskId, ['exited']);
  });
});

describe("a machine's own cap on active tasks", () => {
  const suite = runnerSuite();

  test('beyond limits.maxActive a start is 429 MACHINE_BUSY with Retry-After, nothing is created, other machines still start, and a slot frees when a task ends', async () => {
    const first = await suite.start('two-at-once', null);
    await suite.start('two-at-once', null);
    const before = (await suite.api.getAll('/v1/tasks')).length;
    const refused = await suite.api.post('/v1/tasks', { machine: 'two-at-once', parameters: null });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'MACHINE_BUSY');
    assert.match(refused.body.detail, /2 tasks of machine two-at-once are active already/);
    assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal((await suite.api.getAll('/v1/tasks')).length, before, 'nothing was created');
    await suite.start('sleeper', null);
    await suite.api.post(`/v1/tasks/${first.taskId}/stop`);
    await waitForState(suite.api, first.taskId, ['exited'], 30_000);
    await suite.start('two-at-once', null);
  });
});

describe('the task list, a page at a time', () => {
  const suite = runnerSuite();
  const linkNext = (link: string | null) => (link === null ? undefined : /<([^>]*)>;\s*rel="next"/.exec(link)?.[1]);

  test('pages in creation order with a Link to the next; the tessia list without parameters stays one plain array', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const task = await suite.start('echo', [`echo ${i}`]);
      ids.push(task.taskId);
    }
    const brief = await suite.api.get('/v1/tasks');
    assert.deepEqual(
      brief.body.map((task: { taskId: string }) => task.taskId),
      ids,
    );
    assert.deepEqual(Object.keys(brief.body[0]).sort(), ['state', 'taskId'], 'the tessia v1 shape');
    assert.equal(brief.headers.get('link'), null, 'one page holds them: no next page');

    const seen: string[] = [];
    const pages: number[] = [];
    for (let path: string | undefined = '/v1/tasks?view=full&limit=2'; path !== undefined;) {
      const page: Reply = await suite.api.get(path);
      assert.equal(page.status, 200);
      assert.ok(Array.isArray(page.body));
      seen.push(...page.body.map((task: { taskId: string; machine: string }) => task.taskId));
      assert.ok(
        page.body.every((task: { machine?: string }) => task.machine === 'echo'),
        'every field',
      );
      pages.push(page.body.length);
      path = linkNext(page.headers.get('link'));
      if (path !== undefined) assert.match(path, /^\/v1\/tasks\?view=full&limit=2&after=\d+$/, 'the other parameters kept');
    }
    assert.deepEqual(pages, [2, 2, 1]);
    assert.deepEqual(seen, ids);

    const briefPage = await suite.api.get('/v1/tasks?limit=3');
    assert.deepEqual(
      briefPage.body.map((task: { taskId: string }) => task.taskId),
      ids.slice(0, 3),
    );
    assert.match(briefPage.headers.get('link') ?? '', /^<\/v1\/tasks\?limit=3&after=\d+>; rel="next"$/);
    for (const taskId of ids) await waitForState(suite.api, taskId, ['exited']);
  });

  test('a page larger than the cap, or a cursor that is not one, is 400 naming the parameter', async () => {
    for (const [query, detail] of [
      ['view=full&limit=1001', /limit: must be at most 1000 with view=full/],
      ['limit=10001', /limit/],
      ['limit=0', /limit/],
      ['after=deadbeef', /after: must be the cursor of an earlier page/],
      ['after=1&after=2', /after/],
    ] as const) {
      const reply = await suite.api.get(`/v1/tasks?${query}`);
      assert.equal(reply.status, 400, query);
      assert.equal(reply.body.code, 'INVALID_REQUEST');
      assert.match(reply.body.detail, detail);
    }
  });
});
