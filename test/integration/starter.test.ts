/**
 * The privileged starter on its own socket: it starts the configured machines for the task ids it
 * is given, and refuses anything else before systemd hears of it.
 */
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerSuite } from '../harness/suite.js';
import { TEST_MACHINES } from '../harness/test-runner.js';
import { loadConfig } from '../../src/config/load.js';
import { settingsDigest } from '../../src/starter/protocol.js';

const MAX_PARAMETER_BYTES = 4096;

describe('the privileged starter', () => {
  const suite = runnerSuite({ limits: { maxParameterBytes: MAX_PARAMETER_BYTES } });
  const socketPath = () => `${suite.runner.systemd.root}${suite.runner.starter?.socket ?? ''}`;

  /** Sends raw lines; resolves with the answers (parsed) and whether the starter closed the connection. */
  async function exchange(lines: string[], expected: number): Promise<{ answers: any[]; closed: boolean }> {
    const socket = createConnection(socketPath());
    const answers: any[] = [];
    const connection = { closed: false };
    socket.on('close', () => (connection.closed = true));
    socket.on('error', () => undefined);
    const reader = createInterface({ input: socket });
    reader.on('line', (line) => answers.push(JSON.parse(line)));
    for (const line of lines) socket.write(`${line}\n`);
    const deadline = Date.now() + 10_000;
    while (answers.length < expected && !connection.closed && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    socket.destroy();
    return { answers, closed: connection.closed };
  }

  /** The digest of the settings in the runner's config file, as the runner sends it with each start. */
  const settings = async () => settingsDigest(await loadConfig(`${suite.runner.systemd.root}${suite.runner.configPath}`));

  const taskUnits = async () =>
    (await suite.runner.systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-task-*')).stdout.trim();

  test('its socket is root’s alone when it is started by hand (the package’s socket unit adds the runner’s group)', async () => {
    const mode = await suite.runner.systemd.run(['stat', '-c', '%U %a', suite.runner.starter?.socket ?? '']);
    assert.equal(mode.stdout.trim(), 'root 600');
  });

  test('refuses what is not a start of a configured machine for a task id, and starts nothing', async () => {
    const before = await taskUnits();
    const digest = await settings();
    const { answers } = await exchange(
      [
        'not json',
        JSON.stringify({ id: 1, taskId: '0000000a', machine: 'no-such-machine', parameters: [], settings: digest }),
        JSON.stringify({ id: 2, taskId: '../../evil', machine: 'echo', parameters: [], settings: digest }),
        JSON.stringify({ id: 3, taskId: 'runner', machine: 'echo', parameters: [], settings: digest }),
        JSON.stringify({ id: 4, taskId: '0000000b', machine: 'echo', parameters: [], properties: [['User', 'root']], settings: digest }),
        JSON.stringify({ id: 5, taskId: '0000000c', machine: 'echo', parameters: ['x'.repeat(MAX_PARAMETER_BYTES)], settings: digest }),
        JSON.stringify({ id: 6, taskId: '0000000f', machine: 'echo', parameters: [] }),
        JSON.stringify({ id: 10, taskId: '00000010', machine: 'echo', parameters: [], settings: 'f'.repeat(64) }),
        JSON.stringify({ id: 11, op: 'unit', action: 'stop', taskId: '../runner' }),
        JSON.stringify({ id: 12, op: 'unit', action: 'start', taskId: '00000011' }),
        JSON.stringify({ id: 13, op: 'unit', action: 'kill', taskId: '00000011', signal: 15 }),
        JSON.stringify({ id: 14, op: 'unit', action: 'stop', unit: 'tessia-task-runner.service' }),
        JSON.stringify({ id: 15, op: 'unit', action: 'stop', taskId: '00000012' }),
      ],
      13,
    );
    const byId = new Map(answers.map((answer) => [answer.id, answer.error?.name]));
    assert.equal(byId.get(-1), 'tessia.Starter.InvalidRequest', 'not JSON');
    assert.equal(byId.get(1), 'tessia.Starter.UnknownMachine');
    assert.equal(byId.get(2), 'tessia.Starter.InvalidRequest', 'a task id that is a path');
    assert.equal(byId.get(3), 'tessia.Starter.InvalidRequest', 'a task id that is not 8 hex digits');
    assert.equal(byId.get(4), 'tessia.Starter.InvalidRequest', 'unit properties are no part of a request');
    assert.equal(byId.get(5), 'tessia.Starter.ParametersTooLarge');
    assert.equal(byId.get(6), 'tessia.Starter.InvalidRequest', 'no settings digest');
    assert.equal(byId.get(10), 'tessia.Starter.ConfigMismatch', 'settings the config file does not have');
    assert.equal(byId.get(11), 'tessia.Starter.InvalidRequest', 'a unit action on a task id that is a path');
    assert.equal(byId.get(12), 'tessia.Starter.InvalidRequest', 'an action other than stop, kill and reset-failed');
    assert.equal(byId.get(13), 'tessia.Starter.InvalidRequest', 'a signal of the runner’s choosing');
    assert.equal(byId.get(14), 'tessia.Starter.InvalidRequest', 'a unit by its name');
    assert.equal(byId.get(15), 'org.freedesktop.systemd1.NoSuchUnit', 'systemd’s own answer, by its D-Bus name');
    assert.ok(
      answers.every((answer) => answer.result === undefined),
      JSON.stringify(answers),
    );
    assert.equal(await taskUnits(), before, 'no unit was started');
  });

  test('refuses a machine whose user is UID 0 under another name than root, or has root as its group', async () => {
    const run = async (...argv: string[]) => {
      const result = await suite.runner.systemd.run(argv);
      assert.equal(result.code, 0, result.stderr);
    };
    await run('useradd', '--non-unique', '--uid', '0', '--no-create-home', 'tessia-test-toor');
    await run('useradd', '--gid', '0', '--no-create-home', 'tessia-test-gid0');
    try {
      const before = await taskUnits();
      const digest = await settings();
      const { answers } = await exchange(
        [
          JSON.stringify({ id: 9, taskId: '0000000e', machine: 'uid0-alias', parameters: [], settings: digest }),
          JSON.stringify({ id: 11, taskId: '00000011', machine: 'gid0-primary', parameters: [], settings: digest }),
        ],
        2,
      );
      const byId = new Map(answers.map((answer) => [answer.id, answer.error]));
      assert.equal(byId.get(9)?.name, 'tessia.Starter.RootUser', JSON.stringify(answers));
      assert.match(byId.get(9)?.message ?? '', /runs as tessia-test-toor, UID 0: .*sandbox\.allowRoot/);
      assert.equal(byId.get(11)?.name, 'tessia.Starter.RootUser', JSON.stringify(answers));
      assert.match(byId.get(11)?.message ?? '', /runs as group of tessia-test-gid0, GID 0/);
      assert.equal(await taskUnits(), before, 'no unit was started');
    } finally {
      await suite.runner.systemd.run(['userdel', '--force', 'tessia-test-toor']);
      await suite.runner.systemd.run(['userdel', '--force', 'tessia-test-gid0']);
    }
  });

  test('an edit of the config that the runner refuses to reload never reaches a task unit', async () => {
    const reload = () => suite.runner.systemd.systemctl('reload', suite.runner.unit);
    const original = { machines: TEST_MACHINES, limits: { maxParameterBytes: MAX_PARAMETER_BYTES }, auth: { anonymous: 'write' } };
    // A machine's limit changed together with a key that needs a restart: the reload is refused whole.
    suite.runner.writeConfig({
      ...original,
      machines: { ...TEST_MACHINES, echo: { builtin: 'echo', limits: { tasksMax: 7 }, sandbox: { allowLoopback: true } } },
      limits: { maxParameterBytes: MAX_PARAMETER_BYTES, maxActiveTasks: 7 },
    });
    try {
      assert.notEqual((await reload()).code, 0, 'the reload is refused');
      const task = await suite.start('echo', ['sleep 30']);
      const unit = await suite.runner.systemd.show(task.unit, ['TasksMax', 'IPAddressDeny']);
      assert.equal(unit['TasksMax'], '512', 'the limit the runner checked, not the edited one');
      assert.notEqual(unit['IPAddressDeny'], '', 'still no loopback');
    } finally {
      suite.runner.writeConfig(original);
      assert.equal((await reload()).code, 0);
    }
  });

  test('a request line longer than any valid one ends the connection', async () => {
    const { answers, closed } = await exchange([`{"id":7,"padding":"${'y'.repeat(MAX_PARAMETER_BYTES + 2048)}"}`], 1);
    assert.deepEqual(answers, []);
    assert.ok(closed, 'the starter closed the connection');
  });

  test('starts a configured machine for a task id, with its parameters as stdin, and nothing of them in the unit', async () => {
    const { answers } = await exchange(
      [
        JSON.stringify({
          id: 8,
          taskId: '0000000d',
          machine: 'echo',
          parameters: ['echo through the starter'],
          settings: await settings(),
        }),
      ],
      1,
    );
    assert.deepEqual(answers, [{ id: 8, result: 'done' }]);
    const unit = 'tessia-task-0000000d.service';
    await waitForJournalLine(suite.runner, '0000000d', 'through the starter');
    const shown = await suite.runner.systemd.systemctl('show', '--all', unit);
    assert.doesNotMatch(shown.stdout, /through the starter/);
    // The runner has no record of it: it is an unknown unit to the runner, collected here by hand.
    await suite.runner.systemd.systemctl('stop', unit);
  });

  test('the runner says plainly when the starter cannot be reached, and records the task as not started', async () => {
    await suite.runner.systemd.systemctl('stop', suite.runner.starter?.unit ?? '');
    try {
      const reply = await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['echo never'] }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await suite.runner.journal()}`);
      });
      assert.equal(reply.status, 500, JSON.stringify(reply.body));
      assert.match(reply.body.detail, /privileged starter .* is not reachable/);
      const listed = (await suite.api.get('/v1/tasks?view=full')).body as { taskId: string; state: string; exitCode: number | null }[];
      const failed = listed.find((task) => task.state === 'exited' && task.exitCode === -3);
      assert.ok(failed, JSON.stringify(listed));
    } finally {
      await suite.runner.stop();
      await suite.runner.start();
    }
  });
});

describe('a runner that may not stop units itself', () => {
  // Not the package's user: polkit's rule (units/60-tessia-task-runner.rules) allows this one nothing.
  const user = 'tessia-test-unprivileged';
  const suite = runnerSuite({}, { user });
  const loadState = async (unit: string) => (await suite.runner.systemd.show(unit, ['LoadState']))['LoadState'];

  test('runs as its user, whose own StopUnit systemd refuses', async () => {
    const { MainPID: pid } = await suite.runner.systemd.show(suite.runner.unit, ['MainPID']);
    assert.equal((await suite.runner.systemd.run(['ps', '-o', 'user=', '-p', pid ?? '0'])).stdout.trim(), user);
    const { unit } = await suite.start('sleeper', null);
    const own = await suite.runner.systemd.runAs(user, [
      'busctl',
      'call',
      'org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.freedesktop.systemd1.Manager',
      'StopUnit',
      'ss',
      unit,
      'replace',
    ]);
    assert.notEqual(own.code, 0, own.stdout);
    assert.match(own.stderr, /denied|authentication/i);
    assert.equal((await suite.runner.systemd.show(unit, ['ActiveState']))['ActiveState'], 'active');
  });

  test('stops a task, kills one on a second stop, and collects ended and failed units: the starter does it for the runner', async () => {
    const stopped = await suite.start('sleeper', null);
    const reply = await suite.api.post(`/v1/tasks/${stopped.taskId}/stop`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal((await waitForState(suite.api, stopped.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, stopped.unit);

    const stubborn = await suite.start('ignores-term', null);
    await waitForJournalLine(suite.runner, stubborn.taskId, 'trapped');
    assert.equal((await suite.api.post(`/v1/tasks/${stubborn.taskId}/stop`)).status, 200);
    assert.equal((await suite.api.get(`/v1/tasks/${stubborn.taskId}`)).body.state, 'stopping');
    assert.equal((await suite.api.post(`/v1/tasks/${stubborn.taskId}/stop`)).status, 200);
    assert.equal((await waitForState(suite.api, stubborn.taskId, ['exited'])).exitCode, -1);
    await waitForCollected(suite.runner, stubborn.unit);

    // Ended by itself (active, exited: stopped to be collected) and failed (reset to be collected).
    const ended = await suite.start('echo', ['echo done']);
    const failed = await suite.start('echo', ['return 3']);
    assert.equal((await waitForState(suite.api, ended.taskId, ['exited'])).exitCode, 0);
    assert.equal((await waitForState(suite.api, failed.taskId, ['exited'])).exitCode, 3);
    await waitForCollected(suite.runner, ended.unit);
    await waitForCollected(suite.runner, failed.unit);
    assert.equal(await loadState(failed.unit), 'not-found');
  });
});
