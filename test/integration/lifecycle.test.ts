/** Every state path of a task, checked through the API and from systemd's side. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eventually } from '../../src/embedded/eventually.js';
import { metricOf } from '../harness/metrics.js';
import { runnerSuite } from '../harness/suite.js';
import { storedRow, waitForRowGone } from '../harness/test-runner.js';
import { journalOf, taskJournalctl, waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';

describe('a task over its life', () => {
  const suite = runnerSuite();
  const { started } = suite;
  const start = (machine: string, parameters: unknown) => suite.start(machine, parameters);

  test('a started task is a running transient unit in the tasks slice, sandboxed as configured', async () => {
    const task = await start('echo', ['echo started', 'sleep 30']);
    assert.equal(task.state, 'running');
    assert.match(task.taskId, /^[0-9a-f]{8}$/);
    assert.equal(task.unit, `tessia-task-${task.taskId}.service`);
    assert.match(task.invocationId, /^[0-9a-f]{32}$/);
    const unit = await suite.runner.systemd.show(task.unit, [
      'ActiveState',
      'SubState',
      'Slice',
      'Type',
      'RemainAfterExit',
      'DynamicUser',
      'PrivateTmp',
      'NoNewPrivileges',
      'ProtectSystem',
      'ProtectHome',
      'KillMode',
      'TimeoutStopUSec',
      'InvocationID',
      'LimitCORE',
      'TasksMax',
      'WorkingDirectory',
      'StateDirectory',
      'LogNamespace',
      'LogRateLimitIntervalUSec',
      'LogRateLimitBurst',
      'Transient',
      'ExecStart',
      'Environment',
      'StandardInput',
      'StandardOutput',
      'StandardError',
    ]);
    assert.equal(unit['ActiveState'], 'active');
    assert.equal(unit['SubState'], 'running');
    assert.equal(unit['Slice'], 'tessia-tasks.slice');
    assert.equal(unit['Type'], 'exec');
    assert.equal(unit['Transient'], 'yes');
    assert.equal(unit['RemainAfterExit'], 'yes');
    assert.equal(unit['DynamicUser'], 'yes');
    assert.equal(unit['PrivateTmp'], 'yes');
    assert.equal(unit['NoNewPrivileges'], 'yes');
    assert.equal(unit['ProtectSystem'], 'strict');
    assert.equal(unit['ProtectHome'], 'yes');
    assert.equal(unit['KillMode'], 'control-group');
    assert.equal(unit['TimeoutStopUSec'], '10s');
    assert.equal(unit['LimitCORE'], '0');
    assert.equal(unit['TasksMax'], '512');
    assert.equal(unit['StateDirectory'], `tessia-tasks/${task.taskId}`);
    assert.equal(unit['WorkingDirectory'], `/var/lib/tessia-tasks/${task.taskId}`);
    // Its output goes to the tasks' journal namespace, whose journald decides the rate limit.
    assert.equal(unit['LogNamespace'], 'tessia');
    assert.equal(unit['LogRateLimitIntervalUSec'], '0', 'no per-unit rate limit');
    assert.equal(unit['LogRateLimitBurst'], '0', 'no per-unit rate limit');
    assert.equal(unit['InvocationID'], task.invocationId);
    // Parameters reach the task only through its stdin: in no property of the unit (any local user
    // can read those over D-Bus), and the file systemd opened is already gone.
    assert.equal(unit['StandardInput'], 'file');
    assert.equal(unit['StandardOutput'], 'journal');
    assert.equal(unit['StandardError'], 'journal');
    const everything = await suite.runner.systemd.systemctl('show', '--all', task.unit);
    assert.match(everything.stdout, /ExecStart=/);
    assert.doesNotMatch(everything.stdout, /echo started/);
    const handoff = await suite.runner.systemd.run(['ls', '-A', suite.runner.parametersDir]);
    assert.deepEqual([handoff.code, handoff.stdout], [0, '']);
    await waitForJournalLine(suite.runner, task.taskId, 'started');
    const user = await suite.runner.systemd.run([
      'ps',
      '-o',
      'user=',
      '-p',
      (await suite.runner.systemd.show(task.unit, ['MainPID']))['MainPID'] ?? '0',
    ]);
    assert.equal(user.code, 0, user.stderr);
    assert.match(user.stdout.trim(), /^\S+$/, 'ps named the user of the main process');
    assert.notEqual(user.stdout.trim(), 'root');
  });

  test('a task that finishes reports exit code 0 with its times, and its unit is collected', async () => {
    const task = await start('echo', ['echo one', 'log warning two', 'echo three']);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, 0);
    assert.equal(done.result, 'success');
    assert.equal(done.machine, 'echo');
    assert.ok(Date.parse(done.createdAt) <= Date.parse(done.startedAt));
    assert.ok(Date.parse(done.startedAt) <= Date.parse(done.finishedAt));
    await waitForCollected(suite.runner, task.unit);
    await waitForJournalLine(suite.runner, task.taskId, 'three');
    const lines = await journalOf(suite.runner, task.taskId);
    assert.deepEqual(
      lines.filter((line) => ['one', 'two', 'three'].includes(line)),
      ['one', 'two', 'three'],
    );
  });

  test("a task's start and end are taken from systemd's signals: nothing read back, its exit code, times and CPU time right", async () => {
    const readsBefore = await metricOf(suite.runner.baseUrl, 'tessia_unit_reads_total');
    // Running on past the start's answer: a task that ends while its start is being answered is read
    // back, rightly (the runner may have its exit's Service signal without the Unit one yet).
    const task = await start('echo', 'echo working\nsleep 2\nRETURN 5');
    assert.equal(task.state, 'running');
    assert.match(task.invocationId, /^[0-9a-f]{32}$/);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, 5);
    assert.equal(done.result, 'exit-code');
    await waitForCollected(suite.runner, task.unit);
    const after = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
    assert.equal(after.invocationId, task.invocationId);
    assert.ok(after.usage?.cpuNsec > 0, `systemd's CPU time recorded: ${JSON.stringify(after.usage)}`);
    assert.ok(Date.parse(after.startedAt) <= Date.parse(after.finishedAt));
    assert.equal(await metricOf(suite.runner.baseUrl, 'tessia_unit_reads_total'), readsBefore, 'a unit was read back');
  });

  test("systemd's signals about a unit not a task's are not sent to the runner (its job's end is, and dropped unread)", async () => {
    // Counted from a quiet moment: the signals of units the runner stopped following a moment ago count too.
    const dropped = () => metricOf(suite.runner.baseUrl, 'tessia_dbus_unit_signals_dropped_total');
    let droppedBefore = await dropped();
    for (let quiet = 0; quiet < 2;) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const now = await dropped();
      quiet = now === droppedBefore ? quiet + 1 : 0;
      droppedBefore = now;
    }
    const unit = `not-a-task-${process.pid}-${Date.now()}.service`;
    const ran = await suite.runner.systemd.run(['systemd-run', '--quiet', '--wait', `--unit=${unit}`, '/bin/true']);
    assert.equal(ran.code, 0, ran.stderr);
    // Its job's JobRemoved reaches the runner (one rule for every job) and is dropped unread...
    await eventually('its job’s end dropped', dropped, (count) => count >= droppedBefore + 1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // ...but none of the PropertiesChanged of its start and end (its Unit and Service interfaces, and
    // the units it depends on): each followed unit has a match rule of its own.
    const after = await dropped();
    assert.ok(after - droppedBefore <= 2, `${after - droppedBefore} of systemd's signals about it reached the runner`);
  });

  test('LOG lines reach the journal with the priority of their level', async () => {
    const task = await start('echo', ['log error broken', 'log debug details', 'echo plain']);
    await waitForState(suite.api, task.taskId, ['exited']);
    await waitForJournalLine(suite.runner, task.taskId, 'plain');
    const json = await suite.runner.systemd.run(taskJournalctl('-o', 'json', `TESSIA_TASK_ID=${task.taskId}`));
    const priorities = new Map<string, string>();
    for (const line of json.stdout.split('\n').filter(Boolean)) {
      const entry = JSON.parse(line) as { MESSAGE?: string; PRIORITY?: string };
      if (entry.MESSAGE) priorities.set(entry.MESSAGE, entry.PRIORITY ?? '');
    }
    assert.equal(priorities.get('broken'), '3');
    assert.equal(priorities.get('details'), '7');
    assert.equal(priorities.get('plain'), '6');
  });

  test('RETURN n ends the task with exit code n', async () => {
    const task = await start('echo', 'echo before\nRETURN 7\necho never');
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, 7);
    assert.equal(done.result, 'exit-code');
    await waitForCollected(suite.runner, task.unit);
    // "never" missing means something only once the journal has the task's output: wait for the line before it.
    await waitForJournalLine(suite.runner, task.taskId, 'before');
    const output = await journalOf(suite.runner, task.taskId);
    assert.deepEqual(
      output.filter((line) => ['before', 'never'].includes(line)),
      ['before'],
      'the line before RETURN, once, and nothing after it',
    );
    assert.ok(!output.includes('never'));
  });

  test('RAISE ends the task with exit code -3 (exception)', async () => {
    const task = await start('echo', ['echo before', 'raise']);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, -3);
    assert.equal(done.result, 'signal');
    await waitForCollected(suite.runner, task.unit);
  });

  test('a task past its runtime limit ends with exit code -2 (timeout)', async () => {
    const task = await start('echo-short', ['echo long', 'sleep 60']);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, -2);
    assert.equal(done.result, 'timeout');
    await waitForCollected(suite.runner, task.unit);
  });

  test('stop runs the CLEANUP section, ends with -1 and leaves no process', async () => {
    const task = await start('echo', ['echo working', 'sleep 60', 'cleanup', 'echo cleaning up', 'sleep 0.5', 'echo cleaned']);
    const cgroup = (await suite.runner.systemd.show(task.unit, ['ControlGroup']))['ControlGroup'];
    const procs = `for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do [ -f "$root${cgroup}/cgroup.procs" ] && cat "$root${cgroup}/cgroup.procs" && exit; done; echo gone`;
    const before = await suite.runner.systemd.run(['sh', '-c', procs]);
    assert.match(before.stdout.trim(), /^\d+/, 'the running task has processes in its cgroup');
    await waitForJournalLine(suite.runner, task.taskId, 'working');
    const stopped = await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal(stopped.status, 200);
    assert.ok(['stopping', 'exited'].includes(stopped.body.state), stopped.body.state);
    assert.equal(stopped.body.stopRequested, true);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    assert.equal(done.exitCode, -1);
    await waitForJournalLine(suite.runner, task.taskId, 'cleaned');
    const output = await journalOf(suite.runner, task.taskId);
    assert.deepEqual(
      output.filter((line) => ['working', 'cleaning up', 'cleaned'].includes(line)),
      ['working', 'cleaning up', 'cleaned'],
      'the work, then the whole CLEANUP section, each line once',
    );
    await waitForCollected(suite.runner, task.unit);
    const afterwards = await suite.runner.systemd.run(['sh', '-c', procs]);
    assert.match(afterwards.stdout.trim(), /^(gone)?$/, 'no process is left in the cgroup');
  });

  test('a second stop kills a task whose cleanup is still running, at once', async () => {
    const task = await start('echo', ['echo working', 'sleep 60', 'cleanup', 'echo cleanup begins', 'sleep 60', 'echo never']);
    await waitForJournalLine(suite.runner, task.taskId, 'working');
    const first = await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal(first.body.state, 'stopping');
    await waitForJournalLine(suite.runner, task.taskId, 'cleanup begins');
    const began = Date.now();
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    // The grace period is 10 s: ending well before it means SIGKILL came from the second stop.
    assert.ok(Date.now() - began < 5000, `took ${Date.now() - began} ms`);
    assert.equal(done.exitCode, -1);
    await waitForCollected(suite.runner, task.unit);
    assert.ok(!(await journalOf(suite.runner, task.taskId)).includes('never'));
  });

  test('a unit that fails to start gives a clear 500 and a task that ended with -3', async () => {
    const reply = await suite.api.post('/v1/tasks', { machine: 'no-such-program', parameters: {} });
    assert.equal(reply.status, 500);
    const taskId = /task ([0-9a-f]{8})/.exec(reply.body.detail)?.[1];
    assert.ok(taskId, reply.body.detail);
    assert.match(reply.body.detail, /failed to start/);
    const task = (await suite.api.get(`/v1/tasks/${taskId}`)).body;
    assert.equal(task.state, 'exited');
    assert.equal(task.exitCode, -3);
    await waitForCollected(suite.runner, `tessia-task-${taskId}.service`);
  });

  test('stopping a task that has already ended changes nothing', async () => {
    const task = await start('echo', ['echo quick']);
    const done = await waitForState(suite.api, task.taskId, ['exited']);
    const stopped = await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.exitCode, 0);
    assert.equal(stopped.body.finishedAt, done.finishedAt);
  });

  test('DELETE of a running task stops it, forgets it, and collects its unit; the store keeps its row until then', async () => {
    const task = await start('echo', ['echo working', 'sleep 60']);
    const deleted = await suite.api.delete(`/v1/tasks/${task.taskId}`);
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.body, { success: true });
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 404);
    assert.ok(!(await suite.api.get('/v1/tasks')).body.some((item: { taskId: string }) => item.taskId === task.taskId));
    // Whenever systemd still has the unit, the store still has the task (hidden), marked as being deleted:
    // the row read first, then the unit, so a row gone means the unit was gone before.
    for (;;) {
      const row = await storedRow(suite.runner, task.taskId);
      const unit = await suite.runner.systemd.show(task.unit, ['LoadState', 'SubState']);
      if (unit['LoadState'] === 'not-found') break;
      assert.ok(row, `the store lost the task while its unit is ${unit['SubState']}`);
      assert.equal(row['forgotten'], 1);
      assert.equal(row['stop_requested'], 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    started.delete(task.taskId);
    await waitForRowGone(suite.runner, task.taskId);
    assert.equal((await suite.api.delete(`/v1/tasks/${task.taskId}`)).status, 404);
  });

  test('DELETE again of a task that is still stopping kills it: hidden, it is never out of reach', async () => {
    const task = await start('ignores-term', null);
    await waitForJournalLine(suite.runner, task.taskId, 'trapped');
    assert.equal((await suite.api.delete(`/v1/tasks/${task.taskId}`)).status, 200);
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).status, 404);
    assert.equal((await suite.runner.systemd.show(task.unit, ['ActiveState']))['ActiveState'], 'deactivating', 'SIGTERM did not end it');
    assert.equal((await suite.api.delete(`/v1/tasks/${task.taskId}`)).status, 200);
    await waitForCollected(suite.runner, task.unit, 10_000);
    started.delete(task.taskId);
    await waitForRowGone(suite.runner, task.taskId);
  });

  test('DELETE of a task that has ended forgets it, row and all', async () => {
    const task = await start('echo', ['echo quick']);
    await waitForState(suite.api, task.taskId, ['exited']);
    const deleted = await suite.api.delete(`/v1/tasks/${task.taskId}`);
    assert.equal(deleted.status, 200);
    started.delete(task.taskId);
    assert.equal(await storedRow(suite.runner, task.taskId), null);
    await waitForCollected(suite.runner, task.unit);
  });

  test('two tasks run side by side, each in its own unit', async () => {
    const [a, b] = await Promise.all([start('echo', ['sleep 30']), start('echo', ['sleep 30'])]);
    assert.notEqual(a.taskId, b.taskId);
    for (const task of [a, b]) {
      assert.equal((await suite.runner.systemd.show(task.unit, ['SubState']))['SubState'], 'running');
    }
    const full = (await suite.api.get('/v1/tasks?view=full')).body as { taskId: string; state: string; machine: string }[];
    for (const task of [a, b]) {
      assert.equal(full.find((item) => item.taskId === task.taskId)?.state, 'running');
    }
  });

  test('the history survives a restart of the runner', async () => {
    const task = await start('echo', ['echo kept']);
    await waitForState(suite.api, task.taskId, ['exited']);
    await waitForCollected(suite.runner, task.unit);
    const before = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
    const pidBefore = (await suite.runner.systemd.show(suite.runner.unit, ['MainPID']))['MainPID'];
    await suite.runner.restart();
    assert.notEqual((await suite.runner.systemd.show(suite.runner.unit, ['MainPID']))['MainPID'], pidBefore, 'the runner did restart');
    const after = await suite.api.get(`/v1/tasks/${task.taskId}`);
    assert.equal(after.status, 200);
    assert.equal(after.body.exitCode, 0);
    assert.deepEqual(after.body, before, 'the same record, every field');
  });

  test('the task shows in systemctl status and journalctl by its id', async () => {
    const task = await start('echo', ['echo visible to admins', 'sleep 30']);
    await waitForJournalLine(suite.runner, task.taskId, 'visible to admins');
    const status = await suite.runner.systemd.systemctl('status', task.unit);
    assert.match(status.stdout, new RegExp(`tessia task ${task.taskId} \\(echo\\)`));
    assert.match(status.stdout, /active \(running\)/);
    // systemctl status reads the unit's own namespace (its LogNamespace=) for its last lines.
    assert.match(status.stdout, /tessia-echo\[\d+\]: visible to admins/);
    // Its output in the tasks' namespace, systemd's lines about it in the default one: "+" reads both.
    const byUnit = await eventually(
      'systemd lines about the unit',
      async () =>
        (await suite.runner.systemd.run(['journalctl', '--namespace=+tessia', '--no-pager', '-o', 'cat', '-u', task.unit])).stdout,
      (text) => text.includes('visible to admins') && text.includes('Started'),
    );
    assert.match(byUnit, /Started/);
    // The wait saw both texts somewhere; that they are this task's lines, each once, it did not check.
    const lines = byUnit.split('\n');
    const started = lines.filter((line) => line.startsWith('Started '));
    assert.equal(started.length, 1, byUnit);
    assert.match(
      started[0] ?? '',
      new RegExp(`^Started (${task.unit} - )?tessia task ${task.taskId} \\(echo\\)\\.$`),
      'systemd names the task by its unit and description',
    );
    assert.deepEqual(
      lines.filter((line) => line.includes('visible to admins')),
      ['visible to admins'],
      "the task's own output, once",
    );
  });
});
