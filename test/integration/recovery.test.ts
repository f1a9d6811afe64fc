/** The runner dies, restarts, loses its bus: no task and no result is lost, no unit is left behind. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_DIR_INSIDE } from '../../src/embedded/private-systemd.js';
import { eventually } from '../../src/embedded/eventually.js';
import { nativeJournalBuilt } from '../harness/requirements.js';
import { runnerSuite } from '../harness/suite.js';
import { startWithFault, storedRow, waitForRowGone } from '../harness/test-runner.js';
import { followLines, ndjson, readAll } from '../../src/embedded/api-streams.js';
import { unitsOfTasks, waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';

describe('recovery', () => {
  // A test may leave the runner stopped: bring it back before the suite's clean-up.
  const suite = runnerSuite(
    { logs: { heartbeatSec: 0.5, followSettleSec: 1 } },
    { beforeCleanUp: (self) => self.runner.start().catch(() => {}) },
  );
  const { started } = suite;
  const start = (machine: string, parameters: unknown) => suite.start(machine, parameters);
  const logsUrl = (taskId: string, query = '') => `${suite.runner.baseUrl}/v1/tasks/${taskId}/logs${query ? `?${query}` : ''}`;

  test('after a SIGKILL with 50 tasks running, every task is known again with its real state and exit code', async () => {
    const release = `${suite.runner.systemd.root}/run/tessia-test/release`;
    rmSync(release, { force: true });
    const short = await Promise.all(Array.from({ length: 20 }, () => start('until-released', null)));
    const long = await Promise.all(Array.from({ length: 30 }, (_, i) => start('echo', [`echo long ${i}`, 'sleep 120'])));
    await waitForJournalLine(suite.runner, long[0]!.taskId, 'long 0');
    const before = ndjson((await readAll(logsUrl(long[0]!.taskId))).body).filter((line) => line.type === 'entry');
    assert.ok(before.length >= 2);

    await suite.runner.kill();
    // The short ones end while the runner is down; systemd keeps their result (RemainAfterExit).
    writeFileSync(release, '');
    await eventually(
      'the short tasks ending',
      async () => {
        const states = await Promise.all(
          short.map((task) => suite.runner.systemd.show(task.unit, ['ActiveState', 'SubState', 'LoadState'])),
        );
        return states.map((state) => `${state['LoadState']}/${state['ActiveState']}/${state['SubState']}`);
      },
      (states) => states.every((state) => state === 'loaded/failed/failed'),
      20_000,
    );
    await suite.runner.start();
    rmSync(release, { force: true });

    for (const task of short) {
      const now = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
      assert.equal(now.state, 'exited', task.taskId);
      assert.equal(now.exitCode, 3);
      assert.equal(now.result, 'exit-code');
      await waitForCollected(suite.runner, task.unit);
    }
    for (const task of long) {
      const now = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
      assert.equal(now.state, 'running', task.taskId);
      assert.equal(now.invocationId, task.invocationId);
    }
    // A stream resumes by cursor across the crash: no gap, no duplicate.
    const resumed = ndjson((await readAll(logsUrl(long[0]!.taskId, `after=${encodeURIComponent(before[0].cursor)}`))).body);
    const all = ndjson((await readAll(logsUrl(long[0]!.taskId))).body).filter((line) => line.type === 'entry');
    assert.deepEqual(
      resumed.filter((line) => line.type === 'entry').map((entry) => entry.cursor),
      all.slice(1).map((entry) => entry.cursor),
    );
    // The re-attached tasks are followed as before: they stop and are collected.
    await Promise.all(long.map((task) => suite.api.post(`/v1/tasks/${task.taskId}/stop`)));
    for (const task of long) {
      const done = await waitForState(suite.api, task.taskId, ['exited']);
      assert.equal(done.exitCode, -1);
      await waitForCollected(suite.runner, task.unit);
    }
    assert.deepEqual(await unitsOfTasks(suite.runner), []);
  });

  test('systemctl restart of the runner leaves its tasks alone and knows them afterwards', async () => {
    const task = await start('echo', ['echo running through a restart', 'sleep 120']);
    const before = await suite.runner.systemd.show(task.unit, ['MainPID', 'InvocationID', 'ActiveState']);
    await suite.runner.restart();
    const afterRestart = await suite.runner.systemd.show(task.unit, ['MainPID', 'InvocationID', 'ActiveState']);
    assert.deepEqual(afterRestart, before);
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).body.state, 'running');
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, task.unit);
  });

  test('SIGTERM ends log streams with a resume point, quickly, and the stream resumes without gap or duplicate', async (t) => {
    const task = await start('echo', [...Array.from({ length: 12 }, (_, i) => [`echo line ${i}`, 'sleep 0.4']).flat(), 'echo last']);
    const first: any[] = [];
    const stream = followLines(logsUrl(task.taskId, 'follow=true'), (line) => first.push(JSON.parse(line)));
    await eventually(
      'a few lines',
      () => first.filter((line) => (line.message ?? '').startsWith('line')).length,
      (n) => n >= 3,
    );
    const began = Date.now();
    await suite.runner.stop();
    const stoppedIn = Date.now() - began;
    await stream.done;
    t.diagnostic(`the runner stopped in ${stoppedIn} ms`);
    assert.ok(stoppedIn < 1500, `the runner took ${stoppedIn} ms to stop`);
    const last = first.at(-1);
    assert.equal(last.type, 'shutdown');
    const entries = first.filter((line) => line.type === 'entry');
    assert.equal(last.after, entries.at(-1).cursor);
    assert.equal((await suite.runner.systemd.show(task.unit, ['SubState']))['SubState'], 'running', 'the task runs on');

    await suite.runner.start();
    const rest = ndjson((await readAll(logsUrl(task.taskId, `follow=true&after=${encodeURIComponent(last.after)}`))).body);
    assert.equal(rest.at(-1).type, 'end');
    assert.equal(rest.at(-1).exitCode, 0);
    const whole = ndjson((await readAll(logsUrl(task.taskId))).body).filter((line) => line.type === 'entry');
    assert.deepEqual(
      [...entries, ...rest.filter((line) => line.type === 'entry')].map((entry) => entry.cursor),
      whole.map((entry) => entry.cursor),
    );
    assert.ok(whole.some((entry) => entry.message === 'last'));
  });

  test('a crash after the record is written but before the unit starts leaves the task lost, not running', async () => {
    await suite.runner.stop();
    await startWithFault(suite.runner, 'after-record');
    const reply = await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['echo never'] }).catch((error: unknown) => error);
    assert.ok(reply instanceof Error, 'the runner died instead of answering');
    await eventually(
      'the runner dead',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'],
      (s) => s !== 'active',
    );
    await suite.runner.start();
    const tasks = (await suite.api.get('/v1/tasks?view=full')).body as any[];
    const lost = tasks.filter((task) => task.state === 'lost');
    assert.equal(lost.length, 1);
    assert.equal(lost[0].exitCode, -99);
    assert.match(lost[0].detail, /unit is gone/);
    assert.equal((await suite.runner.systemd.show(lost[0].unit, ['LoadState']))['LoadState'], 'not-found');
  });

  test('a crash after the unit started but before its state was recorded finds the task running', async () => {
    await suite.runner.stop();
    await startWithFault(suite.runner, 'after-start');
    const before = new Set(((await suite.api.get('/v1/tasks')).body as any[]).map((task) => task.taskId));
    await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['echo survived', 'sleep 120'] }).catch(() => undefined);
    await eventually(
      'the runner dead',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'],
      (s) => s !== 'active',
    );
    await suite.runner.start();
    const task = ((await suite.api.get('/v1/tasks?view=full')).body as any[]).find((item) => !before.has(item.taskId));
    assert.ok(task);
    started.add(task.taskId);
    assert.equal(task.state, 'running');
    assert.match(task.invocationId, /^[0-9a-f]{32}$/);
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
  });

  test('a crash after a DELETE was stored but before its unit was stopped: recovery stops the unit, then forgets the task', async () => {
    const task = await start('echo', ['echo to be deleted', 'sleep 120']);
    await suite.runner.stop();
    await startWithFault(suite.runner, 'after-forget');
    const reply = await suite.api.delete(`/v1/tasks/${task.taskId}`).catch((error: unknown) => error);
    assert.ok(reply instanceof Error, 'the runner died instead of answering');
    await eventually(
      'the runner dead',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'],
      (s) => s !== 'active',
    );
    // It died before the stop: the task runs on, and the store has it marked for deletion.
    assert.equal((await suite.runner.systemd.show(task.unit, ['SubState']))['SubState'], 'running');
    const marked = await storedRow(suite.runner, task.taskId);
    assert.equal(marked?.['forgotten'], 1);
    assert.equal(marked['stop_requested'], 1);

    await suite.runner.start();
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 404);
    await waitForCollected(suite.runner, task.unit);
    started.delete(task.taskId);
    await waitForRowGone(suite.runner, task.taskId);
    assert.match(await suite.runner.journal(), /unfinished delete: stop sent again/);
  });

  test('a DELETE while the bus is down answers 503 and hides the task; once the bus is back the unit is stopped and the task forgotten', async () => {
    const task = await start('echo', ['echo deleted during an outage', 'sleep 120']);
    await suite.runner.systemd.systemctl('stop', 'dbus.socket', 'dbus.service');
    try {
      await eventually(
        'the runner without its bus',
        () => fetch(`${suite.runner.baseUrl}/readyz`),
        (reply) => reply.status === 503,
      );
      const reply = await suite.api.delete(`/v1/tasks/${task.taskId}`);
      assert.equal(reply.status, 503);
      assert.equal(reply.body.code, 'SYSTEMD_UNAVAILABLE');
      assert.match(reply.body.detail, /the delete is recorded/);
      assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 404);
      assert.equal((await suite.runner.systemd.show(task.unit, ['SubState']))['SubState'], 'running', 'nothing could stop it yet');
      assert.equal((await storedRow(suite.runner, task.taskId))?.['forgotten'], 1);
    } finally {
      await suite.runner.systemd.systemctl('start', 'dbus.socket', 'dbus.service');
    }
    await waitForCollected(suite.runner, task.unit, 30_000);
    started.delete(task.taskId);
    await waitForRowGone(suite.runner, task.taskId);
    // The starter has its own connection, found again on its own schedule: the next tests start tasks.
    const starterUnit = suite.runner.starter?.unit;
    assert.ok(starterUnit);
    await eventually(
      'the starter connected to systemd again',
      async () => (await suite.runner.systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', starterUnit])).stdout,
      (journal) => journal.includes('connected to systemd again'),
    );
  });

  test('a task unit the store has no record of is adopted, and can be stopped and collected', async () => {
    const task = await start('echo', ['echo orphan', 'sleep 120']);
    await suite.runner.stop();
    // Inside the private system: SQLite resolves /proc/PID/root to the host's / otherwise.
    const script = `const db = require('${APP_DIR_INSIDE}/node_modules/better-sqlite3')('${suite.runner.stateDir}/tasks.sqlite3');
      console.log(db.prepare('DELETE FROM tasks WHERE task_id = ?').run('${task.taskId}').changes);`;
    const deleted = await suite.runner.systemd.run(['/usr/bin/node', '-e', script]);
    assert.equal(deleted.stdout.trim(), '1', deleted.stderr);
    await suite.runner.start();
    const adopted = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
    assert.equal(adopted.state, 'running');
    assert.equal(adopted.machine, 'echo');
    assert.equal(adopted.invocationId, task.invocationId);
    assert.match(adopted.detail, /adopted/);
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, task.unit);
  });

  test('a running task whose unit was replaced while the runner was down (same name, another invocation) is lost, and the other unit left alone', async () => {
    const task = await start('echo', ['echo the first run', 'sleep 120']);
    await suite.runner.kill();
    // Someone stops the task's unit (systemd keeps no result of it) and runs another under its name:
    // running, as the task's was, but not the run the task started.
    await suite.runner.systemd.systemctl('stop', task.unit);
    await suite.runner.systemd.systemctl('reset-failed', task.unit);
    assert.equal((await suite.runner.systemd.show(task.unit, ['LoadState']))['LoadState'], 'not-found');
    const other = await suite.runner.systemd.run(['systemd-run', `--unit=${task.unit}`, '--slice=tessia-tasks.slice', '/bin/sleep', '120']);
    assert.equal(other.code, 0, other.stderr);
    try {
      const replaced = await suite.runner.systemd.show(task.unit, ['SubState', 'InvocationID', 'MainPID']);
      assert.equal(replaced['SubState'], 'running');
      assert.notEqual(replaced['InvocationID'], task.invocationId);

      await suite.runner.start();
      const now = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
      assert.equal(now.state, 'lost');
      assert.equal(now.exitCode, -99);
      assert.equal(now.invocationId, task.invocationId);
      assert.match(now.detail, /unit is gone/);
      // Not the task's: neither followed nor collected.
      assert.deepEqual(await suite.runner.systemd.show(task.unit, ['SubState', 'InvocationID', 'MainPID']), replaced);
    } finally {
      await suite.runner.systemd.systemctl('stop', task.unit);
    }
    started.delete(task.taskId);
  });

  test('the runner is ready only after recovery and reports its running tasks in its status', async () => {
    const task = await start('echo', ['sleep 120']);
    const running = ((await suite.api.get('/v1/tasks')).body as any[]).filter((item) => item.state === 'running').length;
    assert.ok(running >= 1);
    await eventually(
      'the status text',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['StatusText']))['StatusText'] ?? '',
      (text) => new RegExp(`^${running} tasks? running; listening on 127\\.0\\.0\\.1:\\d+$`).test(text),
    );
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    await waitForState(suite.api, task.taskId, ['exited']);
    await eventually(
      'the status text after the stop',
      async () => (await suite.runner.systemd.show(suite.runner.unit, ['StatusText']))['StatusText'] ?? '',
      (text) => text.startsWith(`${running - 1} task`),
    );
  });

  // With the unix-dgram addon, notifications are datagrams of the runner's own process: systemd takes
  // them with NotifyAccess=main (systemd-notify, the fallback, is a child and needs NotifyAccess=all).
  const ownDatagrams = nativeJournalBuilt();
  test(`with WatchdogSec set${ownDatagrams ? ' and NotifyAccess=main' : ''}, the runner is ready, keeps pinging and is not killed`, async () => {
    await suite.runner.stop();
    await suite.runner.start({}, ['WatchdogSec=2s', ...(ownDatagrams ? ['NotifyAccess=main'] : [])]);
    const status = (await suite.runner.systemd.show(suite.runner.unit, ['StatusText']))['StatusText'] ?? '';
    assert.match(status, /^\d+ tasks? running; listening on /, 'READY=1 and STATUS= were taken');
    const first = (await suite.runner.systemd.show(suite.runner.unit, ['WatchdogTimestampMonotonic']))['WatchdogTimestampMonotonic'];
    await sleep(5000);
    const later = await suite.runner.systemd.show(suite.runner.unit, ['WatchdogTimestampMonotonic', 'ActiveState', 'ExecMainPID']);
    assert.equal(later['ActiveState'], 'active');
    assert.notEqual(later['WatchdogTimestampMonotonic'], first, 'the watchdog timestamp moves');
    assert.notEqual(later['WatchdogTimestampMonotonic'], '0');
    await suite.runner.stop();
    await suite.runner.start();
  });

  test('when the system bus restarts, the runner reconnects and catches up on what happened meanwhile', async () => {
    const task = await start('echo', ['echo across the bus restart', 'sleep 3', 'return 5']);
    const restarted = await suite.runner.systemd.systemctl('restart', 'dbus.service');
    assert.equal(restarted.code, 0, restarted.stderr);
    const done = await waitForState(suite.api, task.taskId, ['exited'], 30_000);
    assert.equal(done.exitCode, 5);
    await waitForCollected(suite.runner, task.unit);
    const next = await eventually(
      'a start after the reconnect',
      () => suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['echo again'] }),
      (reply) => reply.status === 201,
    );
    started.add(next.body.taskId);
    assert.equal((await waitForState(suite.api, next.body.taskId, ['exited'])).exitCode, 0);
    assert.match(await suite.runner.journal(), /lost the system bus connection/);
  });

  test("a follow stream carries on when the tasks' journald and the host's restart", async () => {
    const task = await start('echo', [...Array.from({ length: 10 }, (_, i) => [`echo tick ${i}`, 'sleep 0.3']).flat(), 'echo done']);
    const lines: any[] = [];
    const stream = followLines(logsUrl(task.taskId, 'follow=true'), (line) => lines.push(JSON.parse(line)));
    await eventually(
      'the first ticks',
      () => lines.filter((line) => (line.message ?? '').startsWith('tick')).length,
      (n) => n >= 2,
    );
    // The task's output is in the tasks' namespace, systemd's lines about its unit in the host's journal.
    for (const journald of ['systemd-journald@tessia.service', 'systemd-journald.service']) {
      const restarted = await suite.runner.systemd.systemctl('restart', journald);
      assert.equal(restarted.code, 0, `${journald}: ${restarted.stderr}`);
    }
    await stream.done;
    const messages = lines.filter((line) => line.type === 'entry' && line.source === 'task').map((line) => line.message);
    assert.deepEqual(
      messages.filter((message: string) => /^tick|^done/.test(message)),
      [...Array.from({ length: 10 }, (_, i) => `tick ${i}`), 'done'],
    );
    assert.equal(lines.at(-1).type, 'end');
  });

  test('after systemd re-executes, the runner still sees its tasks change', async () => {
    const task = await start('echo', ['echo across a reexec', 'sleep 120']);
    const reexec = await suite.runner.systemd.systemctl('daemon-reexec');
    assert.equal(reexec.code, 0, reexec.stderr);
    await sleep(500);
    const stopped = await eventually(
      'a stop after the reexec',
      () => suite.api.post(`/v1/tasks/${task.taskId}/stop`),
      (reply) => reply.status === 200,
    );
    assert.equal(stopped.status, 200);
    // The wait made sure of the 200; that the stop was recorded and acted on, it did not.
    assert.equal(stopped.body.taskId, task.taskId);
    assert.equal(stopped.body.stopRequested, true);
    assert.ok(['stopping', 'exited'].includes(stopped.body.state), stopped.body.state);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, task.unit);
  });
});
