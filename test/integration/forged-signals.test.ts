/**
 * Any local user may send a signal to the runner's bus connection (the system bus policy allows
 * every signal): only systemd's current owner speaks for units, only the bus for name owners.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForCollected, waitForState } from '../../src/embedded/runner-tasks.js';
import { unitObjectPath } from '../../src/systemd/unit-path.js';
import { metricOf } from '../harness/metrics.js';
import { runnerSuite } from '../harness/suite.js';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

describe('forged D-Bus signals', () => {
  const suite = runnerSuite();

  const metric = (name: string, labels: Record<string, string> = {}) => metricOf(suite.runner.baseUrl, name, labels);

  /** The unique names of the runner's bus connections: those `busctl list` places in the runner's unit. */
  async function runnerConnections(): Promise<string[]> {
    const listed = await suite.runner.systemd.run(['busctl', '--system', '--unique', '--no-legend', '--no-pager', 'list']);
    return listed.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((columns) => columns[0]?.startsWith(':') && columns.includes(suite.runner.unit))
      .map(([name]) => name as string);
  }

  async function systemdOwner(): Promise<string> {
    const reply = await suite.runner.systemd.run([
      'busctl',
      '--system',
      'call',
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'GetNameOwner',
      's',
      'org.freedesktop.systemd1',
    ]);
    const owner = /^s "(:[0-9.]+)"$/.exec(reply.stdout.trim())?.[1];
    assert.ok(owner, `GetNameOwner: ${reply.stdout} ${reply.stderr}`);
    return owner;
  }

  test('JobRemoved(failed), PropertiesChanged(failed) and NameOwnerChanged sent as nobody change nothing: the task runs on, known, nothing is read again, each is counted', async () => {
    const task = await suite.start('echo', ['echo the target', 'sleep 120']);
    const connections = await runnerConnections();
    assert.ok(connections.length >= 1, 'the runner has a bus connection');
    const owner = await systemdOwner();
    assert.ok(!connections.includes(owner));
    const members = ['JobRemoved', 'PropertiesChanged', 'NameOwnerChanged'];
    const forgedBefore = await Promise.all(members.map((member) => metric('tessia_dbus_forged_signals_total', { member })));
    const readsBefore = await metric('tessia_unit_reads_total');
    const reconnectsBefore = await metric('tessia_dbus_reconnects');

    for (const destination of connections) {
      const emit = (...signal: string[]) =>
        suite.runner.systemd.run([...NOBODY, 'busctl', '--system', `--destination=${destination}`, 'emit', ...signal]);
      const sent = [
        await emit(
          '/org/freedesktop/systemd1',
          'org.freedesktop.systemd1.Manager',
          'JobRemoved',
          'uoss',
          '4242',
          '/org/freedesktop/systemd1/job/4242',
          task.unit,
          'failed',
        ),
        await emit(
          unitObjectPath(task.unit),
          'org.freedesktop.DBus.Properties',
          'PropertiesChanged',
          'sa{sv}as',
          'org.freedesktop.systemd1.Unit',
          '2',
          'ActiveState',
          's',
          'failed',
          'SubState',
          's',
          'failed',
          '0',
        ),
        await emit(
          '/org/freedesktop/DBus',
          'org.freedesktop.DBus',
          'NameOwnerChanged',
          'sss',
          'org.freedesktop.systemd1',
          owner,
          ':1.9999',
        ),
      ];
      // The bus let nobody send them: the runner is what has to refuse them.
      for (const result of sent) assert.equal(result.code, 0, result.stderr);
    }

    const n = connections.length;
    await eventually(
      'every forged signal counted',
      () => Promise.all(members.map((member) => metric('tessia_dbus_forged_signals_total', { member }))),
      (counts) => counts.every((count, i) => count === (forgedBefore[i] ?? 0) + n),
    );
    // What a believed signal sets off (a read of the unit, a new subscription and a read of every task) has had its time.
    await sleep(1000);
    assert.equal(await metric('tessia_unit_reads_total'), readsBefore, 'a unit was read again');
    assert.equal(await metric('tessia_dbus_reconnects'), reconnectsBefore, 'the runner subscribed again');
    const known = (await suite.api.get(`/v1/tasks/${task.taskId}`)).body;
    assert.equal(known.state, 'running');
    assert.equal(known.exitCode, null);
    const unit = await suite.runner.systemd.show(task.unit, ['ActiveState', 'SubState', 'InvocationID']);
    assert.deepEqual(unit, { ActiveState: 'active', SubState: 'running', InvocationID: task.invocationId });
    const warnings = (await suite.runner.journalEntries()).filter((entry) =>
      entry['MESSAGE']?.startsWith('dropped D-Bus signals that systemd did not send'),
    );
    assert.equal(warnings.length, 1, 'one warning a minute at most');
    const [warning] = warnings as [Record<string, string>];
    assert.equal(warning['PRIORITY'], '4');
    assert.match(warning['TESSIA_SENDER'] ?? '', /^:1\.\d+$/);
    assert.notEqual(warning['TESSIA_SENDER'], owner);

    // The task is still followed, through systemd's real signals: their payloads move it, nothing is read back.
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, task.unit);
    assert.equal(await metric('tessia_unit_reads_total'), readsBefore, 'the real end was read back instead of taken from its signals');
  });

  test('a forged PropertiesChanged over 64 KiB is counted as forged, and the framing stays in step: the task runs on and ends from its real signals', async () => {
    const task = await suite.start('echo', ['echo the target', 'sleep 120']);
    const connections = await runnerConnections();
    const forgedBefore = await metric('tessia_dbus_forged_signals_total', { member: 'PropertiesChanged' });
    // Two values of 60 000 characters: one argument may hold 128 KiB (MAX_ARG_STRLEN), the signal needs more than 64.
    const blob = 'x'.repeat(60_000);
    for (const destination of connections) {
      const sent = await suite.runner.systemd.run([
        ...NOBODY,
        'busctl',
        '--system',
        `--destination=${destination}`,
        'emit',
        unitObjectPath(task.unit),
        'org.freedesktop.DBus.Properties',
        'PropertiesChanged',
        'sa{sv}as',
        'org.freedesktop.systemd1.Unit',
        '3',
        'ActiveState',
        's',
        'failed',
        'A',
        's',
        blob,
        'B',
        's',
        blob,
        '0',
      ]);
      assert.equal(sent.code, 0, sent.stderr);
    }
    await eventually(
      'the large forged signal counted',
      () => metric('tessia_dbus_forged_signals_total', { member: 'PropertiesChanged' }),
      (count) => count === forgedBefore + connections.length,
    );
    assert.equal((await suite.api.get(`/v1/tasks/${task.taskId}`)).body.state, 'running');
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    assert.equal((await waitForState(suite.api, task.taskId, ['exited'])).exitCode, -1);
  });
});
