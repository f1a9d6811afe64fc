/**
 * Task events (GET /v1/events) and waiting for a task (GET /v1/tasks/{id}?wait=finished): what the
 * mesh's scheduler uses instead of polling. Against the real systemd, across runner crashes.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { eventually } from '../../src/embedded/eventually.js';
import { followLines, ndjson, readAll } from '../../src/embedded/api-streams.js';
import { waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerSuite } from '../harness/suite.js';
import { startWithFault } from '../harness/test-runner.js';

interface Event {
  type: string;
  id: number;
  taskId: string;
  state: string;
  exitCode: number | null;
  recovered: boolean;
  deleted: boolean;
}

describe('task events', () => {
  const suite = runnerSuite({ logs: { heartbeatSec: 0.5 } }, { beforeCleanUp: (self) => self.runner.start().catch(() => {}) });
  const eventsUrl = (query = '') => `${suite.runner.baseUrl}/v1/events${query ? `?${query}` : ''}`;
  /** Every kept event after `after`, read without following. */
  const kept = async (after: number, query = '') =>
    ndjson((await readAll(eventsUrl(`after=${after}&follow=false${query}`))).body).filter((line: Event) => line.type === 'task') as Event[];
  const lastId = async () => (await kept(0)).at(-1)?.id ?? 0;

  /** Follows the stream, collecting task events; `stop()` ends it. */
  function subscribe(query = '', headers: Record<string, string> = {}) {
    const events: Event[] = [];
    const lines: string[] = [];
    const stream = followLines(
      eventsUrl(query),
      (line) => {
        lines.push(line);
        if (line.startsWith('{')) {
          const parsed = JSON.parse(line) as Event;
          if (parsed.type === 'task') events.push(parsed);
        }
      },
      headers,
    );
    return { events, lines, stream, stop: () => stream.abort() };
  }

  test('a subscriber sees created → running → exited with the exit code, live, in order, each once', async () => {
    const from = await lastId();
    const watcher = subscribe(`after=${from}`);
    const task = await suite.start('echo', ['echo hello', 'sleep 1', 'return 4']);
    const mine = await eventually(
      'the task exited, seen by the subscriber',
      () => watcher.events.filter((event) => event.taskId === task.taskId),
      (events) => events.some((event) => event.state === 'exited'),
      20_000,
    );
    watcher.stop();
    assert.deepEqual(
      mine.map((event) => event.state),
      ['created', 'running', 'exited'],
    );
    assert.equal(mine.at(-1)?.exitCode, 4);
    const ids = watcher.events.map((event) => event.id);
    assert.deepEqual(
      ids,
      [...new Set(ids)].sort((a, b) => a - b),
      'increasing, no duplicate',
    );
    assert.ok(
      watcher.events.every((event) => !event.recovered),
      'seen live',
    );
  });

  test('resuming from an event id (after= or Last-Event-ID) gives exactly the events after it', async () => {
    const from = await lastId();
    const task = await suite.start('echo', ['echo a', 'return 0']);
    await waitForState(suite.api, task.taskId, ['exited']);
    const all = await kept(from);
    assert.ok(all.length >= 3);
    const [first] = all;
    assert.ok(first);
    assert.deepEqual(await kept(first.id), all.slice(1), 'after=');
    const resumed = await readAll(eventsUrl('follow=false'), { 'Last-Event-ID': String(first.id) });
    assert.deepEqual(
      ndjson(resumed.body).filter((line: Event) => line.type === 'task'),
      all.slice(1),
      'Last-Event-ID',
    );
  });

  test('filters by task and machine; SSE frames carry the event id', async () => {
    const from = await lastId();
    const echo = await suite.start('echo', ['return 0']);
    const other = await suite.start('seq1000', null);
    await waitForState(suite.api, echo.taskId, ['exited']);
    await waitForState(suite.api, other.taskId, ['exited']);
    const byTask = await kept(from, `&task=${echo.taskId}`);
    assert.ok(byTask.length >= 3 && byTask.every((event) => event.taskId === echo.taskId));
    const byMachine = await kept(from, '&machine=seq1000');
    // A task that ends before its start is settled goes from created to exited.
    assert.deepEqual(byMachine.at(0)?.state, 'created');
    assert.deepEqual(byMachine.at(-1)?.state, 'exited');
    assert.ok(byMachine.every((event) => event.taskId === other.taskId));
    const sse = await readAll(eventsUrl(`after=${from}&follow=false&task=${echo.taskId}`), { Accept: 'text/event-stream' });
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    const frames = sse.body.split('\n\n').filter((frame) => frame.includes('event: task'));
    assert.equal(frames.length, byTask.length);
    for (const [index, frame] of frames.entries()) {
      assert.match(frame, new RegExp(`^id: ${byTask[index]?.id}\nevent: task\ndata: \\{`));
    }
  });

  test('bad queries are 400 with a detail, and change nothing', async () => {
    for (const query of ['after=-1', 'after=abc', 'task=../x', 'machine=Bad%20Name', 'follow=maybe', 'format=xml', 'nope=1']) {
      const reply = await suite.api.get(`/v1/events?${query}`);
      assert.equal(reply.status, 400, query);
      assert.equal(typeof reply.body.detail, 'string', query);
    }
    const badHeader = await readAll(eventsUrl('follow=false'), { 'Last-Event-ID': 'x1' });
    assert.equal(badHeader.status, 400);
  });

  test('an idle stream gets heartbeats, and is not compressed (each event is sent as it happens)', async () => {
    const watcher = subscribe('', { 'Accept-Encoding': 'gzip' });
    const response = await watcher.stream.response;
    assert.equal(response.headers['content-encoding'], undefined);
    await eventually(
      'two heartbeats',
      () => watcher.lines.filter((line) => line.includes('"heartbeat"')).length,
      (count) => count >= 2,
      10_000,
    );
    watcher.stop();
  });

  test('events that happened while the runner was down are delivered after its restart, as recovery found them', async () => {
    rmSync(`${suite.runner.systemd.root}/run/tessia-test/release`, { force: true });
    const task = await suite.start('until-released', null);
    await waitForState(suite.api, task.taskId, ['running']);
    const seen = await lastId();
    await suite.runner.kill();
    // Ends while nobody watches.
    writeFileSync(`${suite.runner.systemd.root}/run/tessia-test/release`, '');
    await suite.runner.start();
    const after = await eventually(
      'the end, found by recovery',
      () => kept(seen, `&task=${task.taskId}`),
      (events) => events.some((event) => event.state === 'exited'),
    );
    assert.deepEqual(
      after.map((event) => [event.state, event.exitCode, event.recovered]),
      [['exited', 3, true]],
    );
    rmSync(`${suite.runner.systemd.root}/run/tessia-test/release`, { force: true });
  });

  test('a stop is an event (stopping, then exited -1); a DELETE is one too, for those who resume later; its directory goes', async () => {
    const from = await lastId();
    const task = await suite.start('ignores-term', null);
    await waitForState(suite.api, task.taskId, ['running']);
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    await waitForState(suite.api, task.taskId, ['stopping']);
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    await waitForState(suite.api, task.taskId, ['exited']);
    const directory = `${suite.runner.systemd.root}/var/lib/private/tessia-tasks/${task.taskId}`;
    assert.ok(existsSync(directory));
    assert.equal((await suite.api.delete(`/v1/tasks/${task.taskId}`)).status, 200);
    suite.started.delete(task.taskId);
    const events = await eventually(
      'the delete, as an event',
      () => kept(from, `&task=${task.taskId}`),
      (seen) => seen.some((event) => event.deleted),
    );
    assert.deepEqual(
      events.map((event) => [event.state, event.exitCode, event.deleted]),
      [
        ['created', null, false],
        ['running', null, false],
        ['stopping', null, false],
        ['exited', -1, false],
        ['exited', -1, true],
      ],
    );
    await eventually(
      'its working directory gone with its record',
      () => existsSync(directory),
      (exists) => !exists,
    );
  });

  test('a subscriber that reads late gets every event, in order, each once, as the store kept them', async () => {
    const from = await lastId();
    const received: Event[] = [];
    let paused = true;
    let resume: () => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      const request = httpRequest(eventsUrl(`after=${from}`), (response) => {
        response.pause();
        resume = () => {
          paused = false;
          response.resume();
        };
        let partial = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          partial += chunk;
          for (let at = partial.indexOf('\n'); at !== -1; at = partial.indexOf('\n')) {
            const line = JSON.parse(partial.slice(0, at)) as Event;
            partial = partial.slice(at + 1);
            if (line.type === 'task') received.push(line);
          }
          if (received.filter((event) => event.state === 'exited').length >= 40) {
            request.destroy();
            resolve();
          }
        });
      });
      request.on('error', (error) => (paused ? reject(error) : resolve()));
      request.end();
    });
    // The subscriber does not read while these happen.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await suite.start('echo', ['return 0'])).taskId);
    for (const id of ids) await waitForState(suite.api, id, ['exited']);
    resume();
    await done;
    const mine = received.filter((event) => ids.includes(event.taskId));
    const seq = mine.map((event) => event.id);
    assert.deepEqual(
      seq,
      [...seq].sort((a, b) => a - b),
      'in order',
    );
    assert.equal(new Set(seq).size, seq.length, 'each once');
    assert.deepEqual(
      mine,
      (await kept(from)).filter((event) => ids.includes(event.taskId)),
      'exactly what the store kept',
    );
  });

  test('1000 subscribers cost no journal reader and no D-Bus call each', async () => {
    const metric = async (name: string) => {
      const text = await fetch(`${suite.runner.baseUrl}/metrics`).then((reply) => reply.text());
      return Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    };
    const readersBefore = await metric('tessia_journal_readers');
    const readsBefore = await metric('tessia_unit_reads_total');
    const streams = Array.from({ length: 1000 }, () => subscribe());
    try {
      await Promise.all(streams.map((each) => each.stream.response));
      assert.equal(await metric('tessia_event_streams'), 1000);
      assert.equal(await metric('tessia_journal_readers'), readersBefore);
      assert.equal(await metric('tessia_unit_reads_total'), readsBefore, 'no unit read for a subscriber');
      const task = await suite.start('echo', ['return 0']);
      await waitForState(suite.api, task.taskId, ['exited']);
      await eventually(
        'every subscriber got the end',
        () => streams.filter((each) => each.events.some((event) => event.taskId === task.taskId && event.state === 'exited')).length,
        (count) => count === 1000,
      );
    } finally {
      for (const each of streams) each.stop();
    }
  });

  test('a runner killed between writing an event and delivering it delivers it after its restart: no gap', async () => {
    const from = await lastId();
    await suite.runner.stop();
    await startWithFault(suite.runner, 'after-event');
    const watcher = subscribe(`after=${from}`);
    // The stream breaks when the runner dies.
    const broken = watcher.stream.done.catch(() => -1);
    await watcher.stream.response;
    const reply = await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['return 0'] }).catch((error: unknown) => error);
    assert.ok(reply instanceof Error, 'the runner died instead of answering');
    await broken;
    const delivered = watcher.events.at(-1)?.id ?? from;
    await eventually(
      'the runner dead',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'],
      (state) => state !== 'active',
    );
    await suite.runner.start();
    const resumed = await kept(delivered);
    const created = resumed.find((event) => event.state === 'created');
    assert.ok(created, `the "created" event nobody received is delivered: ${JSON.stringify(resumed)}`);
    assert.ok(!watcher.events.some((event) => event.id === created.id), 'it had not been delivered before');
    suite.started.add(created.taskId);
    const ended = await eventually(
      'its end, as recovery settled it',
      () => kept(created.id, `&task=${created.taskId}`),
      (events) => events.some((event) => ['exited', 'lost'].includes(event.state)),
    );
    assert.ok(
      ended.every((event) => event.recovered),
      JSON.stringify(ended),
    );
  });
});

describe('waiting for a task', () => {
  const suite = runnerSuite();

  test('?wait=finished answers when the task ends, with its final state', async () => {
    const task = await suite.start('echo', ['sleep 1', 'return 2']);
    const began = Date.now();
    const reply = await suite.api.get(`/v1/tasks/${task.taskId}?wait=finished&timeout=30`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.state, 'exited');
    assert.equal(reply.body.exitCode, 2);
    assert.ok(Date.now() - began < 20_000);
  });

  test('?wait=finished answers with the task as it is when the timeout runs out; bad waits are 400', async () => {
    const task = await suite.start('sleeper', null);
    const began = Date.now();
    const reply = await suite.api.get(`/v1/tasks/${task.taskId}?wait=finished&timeout=1`);
    const waited = Date.now() - began;
    assert.equal(reply.status, 200);
    assert.equal(reply.body.state, 'running');
    assert.ok(waited >= 900, `waited ${waited} ms`);
    for (const query of ['wait=started', 'wait=finished&timeout=301', 'wait=finished&timeout=-1', 'timeout=x']) {
      const bad = await suite.api.get(`/v1/tasks/${task.taskId}?${query}`);
      assert.equal(bad.status, 400, query);
    }
    assert.equal((await suite.api.get(`/v1/tasks/00000000?wait=finished&timeout=1`)).status, 404);
  });
});
