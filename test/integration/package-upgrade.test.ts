/**
 * An upgrade from the previous release as an admin makes it, in the private systemd: 0.1.0's .deb
 * (built from git history by scripts/build-release-deb.sh) installed and running tasks, then this
 * checkout's .deb installed over it with dpkg. Tasks that were running keep running, stay known with
 * their records and their output, and end with their real exit codes under the new runner; the store
 * is migrated. Then the way back: 0.1.0 installed over it again, and the upgrade again.
 *
 * A task is held at a known point by stopping its main process (SIGSTOP) and let go on with
 * SIGCONT: its unit, its invocation and its exit code stay its own (this systemd cannot freeze units).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { client } from '../../src/embedded/api-client.js';
import { eventually } from '../../src/embedded/eventually.js';
import { PACKAGE_API_SOCKET, TASK_LOG_NAMESPACE } from '../../src/package-layout.js';
import { SCHEMA_VERSION } from '../../src/tasks/store-schema.js';
import {
  freshDeb,
  buildReleaseDeb,
  DEB_SUITE_COMMANDS,
  DEB_SUITE_INSTALL,
  holdPackageTurn,
  setAsideBootNamespaceDropin,
  VERSION,
} from '../harness/deb-package.js';
import { skipUnlessBuildDepends, skipUnlessInstalled } from '../harness/requirements.js';

/** The commit of release 0.1.0. */
const PREVIOUS_RELEASE = '9e836ac';
const PREVIOUS_VERSION = '0.1.0';
const API = 'http://127.0.0.1:7356';
/** 0.1.0 turned the host journald's rate limit off with this file; this version does not ship it. */
const PREVIOUS_JOURNALD_DROPIN = '/usr/lib/systemd/journald.conf.d/60-tessia-task-runner.conf';
const STORE = '/var/lib/tessia-task-runner/tasks.sqlite3';

const SKIP =
  skipUnlessInstalled(
    DEB_SUITE_COMMANDS,
    `the upgrade suite needs the Debian packaging tools, a compiler and polkit: ${DEB_SUITE_INSTALL}`,
  ) ||
  skipUnlessBuildDepends(
    REPO_DIR,
    PREVIOUS_RELEASE,
    `the upgrade suite builds ${PREVIOUS_VERSION}'s .deb (commit ${PREVIOUS_RELEASE}) from the history: its Build-Depends (apt-get install libsystemd-dev pkg-config) and the commit (a full clone)`,
  );

interface TaskView {
  taskId: string;
  state: string;
  machine: string;
  unit: string;
  exitCode: number | null;
  result: string | null;
  detail: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  invocationId: string | null;
}

/** What a record kept across releases must still say (the newer view has more fields). */
const RECORD_FIELDS = ['taskId', 'machine', 'unit', 'createdAt', 'startedAt', 'invocationId'] as const;
const FINISHED_FIELDS = [...RECORD_FIELDS, 'state', 'exitCode', 'result', 'detail', 'finishedAt'] as const;
const pick = (task: TaskView, fields: readonly (keyof TaskView)[]) => Object.fromEntries(fields.map((field) => [field, task[field]]));

describe(`an upgrade from ${PREVIOUS_VERSION} with tasks under way, and back`, { timeout: 60 * 60_000, skip: SKIP }, () => {
  const systemd = PrivateSystemd.fromEnvironment();
  const inside = '/run/tessia-test/package-upgrade';
  const run = async (...argv: string[]) => {
    const result = await systemd.run(argv, { timeoutMs: 300_000 });
    assert.equal(result.code, 0, `${argv.join(' ')}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  // 0.1.0 answers on TCP to anyone local (it had no Unix socket of its own); the new runner, to root
  // on its Unix socket.
  const oldApi = client(API);
  const newApi = client(API, { socketPath: `${systemd.root}${PACKAGE_API_SOCKET}` });
  const installedVersion = async () => run('dpkg-query', '-W', '-f=${Version}', 'tessia-task-runner');
  const unitOf = (taskId: string) =>
    systemd.show(`tessia-task-${taskId}.service`, ['InvocationID', 'MainPID', 'ActiveState', 'SubState', 'ExecMainStatus']);
  /** Holds (SIGSTOP) or lets go on (SIGCONT) a task's main process, the echo machine. */
  const signalMain = (taskId: string, signal: 'SIGSTOP' | 'SIGCONT') =>
    run('systemctl', 'kill', '--kill-who=main', `--signal=${signal}`, `tessia-task-${taskId}.service`);
  /**
   * Holds a task once it has logged its first line: its code is loaded then. Held sooner, it would
   * load it after the packages swap (an admin's task is running, or has not started yet).
   */
  const holdAfter = async (taskId: string, line: string) => {
    await eventually(
      `"${line}" from ${taskId}`,
      () => unitJournal(taskId),
      (journal) => journal.includes(line),
      30_000,
    );
    await signalMain(taskId, 'SIGSTOP');
  };
  const newTask = async (taskId: string) => {
    const reply = await newApi.get<TaskView>(`/v1/tasks/${taskId}`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body;
  };
  const textLogs = async (taskId: string) => {
    const reply = await newApi.get<string>(`/v1/tasks/${taskId}/logs?format=text`);
    assert.equal(reply.status, 200, reply.body);
    return reply.body;
  };
  /**
   * Runs `code` on the task store with the package's own better-sqlite3, as the runner's user (so
   * that SQLite's -wal and -shm files stay the runner's: root's would lock it out); `db` is open.
   */
  const onStore = async (code: string) =>
    JSON.parse(
      await run(
        'setpriv',
        '--reuid=tessia-task-runner',
        '--regid=tessia-task-runner',
        '--init-groups',
        '--',
        '/usr/bin/node',
        '-e',
        `const Database = require('/usr/lib/tessia-task-runner/node_modules/better-sqlite3');
         const db = new Database(${JSON.stringify(STORE)}, { fileMustExist: true });
         try { console.log(JSON.stringify((() => { ${code} })() ?? null)); } finally { db.close(); }`,
      ),
    ) as unknown;
  const storeVersion = () => onStore("return db.pragma('user_version', { simple: true });");
  /** A task unit's journal (the host's and the namespace's), for a message when it ended unexpectedly. */
  const unitJournal = async (taskId: string) =>
    (
      await systemd.run([
        'journalctl',
        `--namespace=+${TASK_LOG_NAMESPACE}`,
        '--no-pager',
        '-o',
        'short-precise',
        '-u',
        `tessia-task-${taskId}.service`,
      ])
    ).stdout;

  let oldDeb = '';
  let newDeb = '';
  let releaseTurn: (() => void) | undefined;
  let restoreBootDropin: (() => Promise<void>) | undefined;
  before(async () => {
    releaseTurn = await holdPackageTurn(systemd, 'package-upgrade.test.ts');
    const began = Date.now();
    oldDeb = await buildReleaseDeb(PREVIOUS_RELEASE);
    const oldBuilt = Date.now();
    newDeb = await freshDeb();
    process.stderr.write(
      `# builds: ${PREVIOUS_VERSION} ${oldBuilt - began} ms (cached after the first), ${VERSION} ${Date.now() - oldBuilt} ms\n`,
    );
    rmSync(`${systemd.root}${inside}`, { recursive: true, force: true });
    mkdirSync(`${systemd.root}${inside}`, { recursive: true });
    copyFileSync(oldDeb, `${systemd.root}${inside}/previous.deb`);
    copyFileSync(newDeb, `${systemd.root}${inside}/current.deb`);
    restoreBootDropin = await setAsideBootNamespaceDropin(systemd);
  });
  after(async () => {
    // Whatever happened above, nothing of either version may stay installed or running.
    await systemd.run(['dpkg', '--purge', 'tessia-task-runner'], { timeoutMs: 120_000 });
    await systemd.run(['systemctl', 'reset-failed', 'tessia-task-*.service']);
    rmSync(PREVIOUS_RELEASE_DROPIN, { force: true });
    await restoreBootDropin?.();
    releaseTurn?.();
  });

  // The stages, each made once by whichever test needs it first, in the order of an admin's day.
  interface UnderOld {
    /** Ended under 0.1.0: its record and output were written by 0.1.0 alone. */
    done: TaskView;
    /** Held through the upgrade: ends under the new runner. */
    through: TaskView;
    /** Ends while no runner runs, between the two versions. */
    whileDown: TaskView;
    units: Record<string, Record<string, string>>;
  }
  /**
   * While the previous release is installed, its runner and the tasks it starts write no V8
   * coverage: test/coverage.ts counts scripts under the package's directory as this checkout's
   * dist/, and that release's code is not this one's.
   */
  const PREVIOUS_RELEASE_DROPIN = `${systemd.root}/run/systemd/system/tessia-task-.service.d/60-previous-release.conf`;
  const installRelease = async (which: 'previous' | 'current') => {
    if (which === 'previous') {
      mkdirSync(dirname(PREVIOUS_RELEASE_DROPIN), { recursive: true });
      writeFileSync(PREVIOUS_RELEASE_DROPIN, '[Service]\nUnsetEnvironment=NODE_V8_COVERAGE\n');
    } else rmSync(PREVIOUS_RELEASE_DROPIN, { force: true });
    await run('systemctl', 'daemon-reload');
    await run('dpkg', '-i', `${inside}/${which}.deb`);
  };
  let underOld: Promise<UnderOld> | undefined;
  const tasksUnderOld = () =>
    (underOld ??= (async () => {
      await installRelease('previous');
      assert.equal(await installedVersion(), PREVIOUS_VERSION);
      const start = async (parameters: string[]) => {
        const reply = await eventually(
          `${PREVIOUS_VERSION} to answer`,
          () => oldApi.post<TaskView>('/v1/tasks', { machine: 'echo', parameters }).catch((error: unknown) => ({ status: 0, body: error })),
          (answer) => answer.status !== 0,
        );
        assert.equal(reply.status, 201, JSON.stringify(reply.body));
        return reply.body as TaskView;
      };
      const through = await start(['echo through: before the upgrade', 'sleep 6', 'echo through: after the upgrade', 'return 3']);
      await holdAfter(through.taskId, 'through: before the upgrade');
      const whileDown = await start(['echo while down: started', 'sleep 6', 'echo while down: ending', 'return 4']);
      await holdAfter(whileDown.taskId, 'while down: started');
      const started = await start(['echo done: under 0.1.0', 'log warning done: a warning', 'return 5']);
      const done = await eventually(
        'the short task to end under 0.1.0',
        async () => (await oldApi.get<TaskView>(`/v1/tasks/${started.taskId}`)).body,
        (task) => task.state === 'exited',
      );
      assert.equal(done.exitCode, 5);
      const units: Record<string, Record<string, string>> = {};
      for (const task of [through, whileDown]) {
        units[task.taskId] = await unitOf(task.taskId);
        assert.equal(units[task.taskId]?.['SubState'], 'running', `${task.taskId} is held while running`);
        assert.equal((await oldApi.get<TaskView>(`/v1/tasks/${task.taskId}`)).body.state, 'running');
      }
      return { done, through, whileDown, units };
    })());

  let upgrading: Promise<UnderOld & { upgradeMs: number }> | undefined;
  const upgraded = () =>
    (upgrading ??= (async () => {
      const old = await tasksUnderOld();
      // One task ends while no runner runs: the old one stopped, the new one not yet installed.
      await run('systemctl', 'stop', 'tessia-task-runner.service');
      await signalMain(old.whileDown.taskId, 'SIGCONT');
      await eventually(
        'the task to end while no runner runs',
        () => unitOf(old.whileDown.taskId),
        // RemainAfterExit keeps it: "exited", or "failed" for an exit status that is not 0.
        (unit) => unit['MainPID'] === '0' && ['exited', 'failed'].includes(unit['SubState'] ?? ''),
      );
      const began = Date.now();
      await installRelease('current');
      const upgradeMs = Date.now() - began;
      process.stderr.write(`# dpkg -i ${VERSION} over ${PREVIOUS_VERSION}: ${upgradeMs} ms\n`);
      assert.match(await installedVersion(), new RegExp(`^${VERSION.replaceAll('.', '\\.')}(-\\d+)?$`));
      return { ...old, upgradeMs };
    })());

  test('the new runner lists the same tasks, their records as 0.1.0 kept them', async () => {
    const { done, through, whileDown } = await upgraded();
    assert.equal((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
    const listed = await newApi.get<{ taskId: string }[]>('/v1/tasks');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.map((task) => task.taskId),
      [through.taskId, whileDown.taskId, done.taskId],
      'the same ids, in the order they were created',
    );
    assert.deepEqual(pick(await newTask(done.taskId), FINISHED_FIELDS), pick(done, FINISHED_FIELDS));
    for (const task of [through, whileDown]) {
      assert.deepEqual(pick(await newTask(task.taskId), RECORD_FIELDS), pick(task, RECORD_FIELDS));
    }
  });

  /** The task's `exited` events, as the new runner's API gives them. */
  const exitedEvents = async (taskId: string) =>
    (await newApi.get<string>(`/v1/events?after=0&follow=false&task=${taskId}`)).body
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { state: string; exitCode: number | null; recovered: boolean })
      .filter((event) => event.state === 'exited');

  test('a task that ended while no runner ran is recorded with its real exit code', async () => {
    const { whileDown, units } = await upgraded();
    const task = await eventually(
      'the new runner to record it',
      () => newTask(whileDown.taskId),
      (view) => view.state === 'exited',
    );
    assert.equal(task.exitCode, 4);
    assert.equal(task.result, 'exit-code');
    assert.equal(task.invocationId, units[whileDown.taskId]?.['InvocationID'], 'the same invocation: not started again');
    const exited = await exitedEvents(whileDown.taskId);
    assert.deepEqual(
      exited.map((event) => [event.exitCode, event.recovered]),
      [[4, true]],
      'one event, found by recovery',
    );
  });

  test('a task running through the upgrade was not restarted, and ends under the new runner with its real exit code', async () => {
    const { through, units } = await upgraded();
    const unit = await unitOf(through.taskId);
    assert.equal(unit['InvocationID'], units[through.taskId]?.['InvocationID']);
    assert.equal(unit['MainPID'], units[through.taskId]?.['MainPID']);
    assert.equal((await newTask(through.taskId)).state, 'running');
    await signalMain(through.taskId, 'SIGCONT');
    const ended = await eventually(
      'the task to end under the new runner',
      () => newTask(through.taskId),
      (task) => task.state === 'exited',
    );
    assert.equal(ended.exitCode, 3);
    assert.equal(ended.result, 'exit-code');
    assert.equal(ended.invocationId, units[through.taskId]?.['InvocationID']);
    const exited = await exitedEvents(through.taskId);
    assert.deepEqual(
      exited.map((event) => [event.exitCode, event.recovered]),
      [[3, false]],
      'one event, seen as it happened',
    );
  });

  test("the old tasks' output, which 0.1.0's tasks wrote to the host's journal, is read through the new API", async () => {
    const { done, through, whileDown } = await upgraded();
    const expected: [TaskView, string[]][] = [
      [done, ['done: under 0.1.0', 'done: a warning']],
      [whileDown, ['while down: started', 'while down: ending']],
      [through, ['through: before the upgrade', 'through: after the upgrade']],
    ];
    if ((await newTask(through.taskId)).state !== 'exited') await signalMain(through.taskId, 'SIGCONT');
    for (const [task, lines] of expected) {
      const text = await eventually(
        `the output of ${task.taskId}`,
        () => textLogs(task.taskId),
        (logs) => lines.every((line) => logs.includes(line)),
      );
      for (const line of lines) {
        const own = text.split('\n').filter((each) => each.endsWith(`: ${line}`));
        assert.equal(own.length, 1, `"${line}" once in:\n${text}`);
      }
    }
  });

  test("the store is migrated to this version's schema; 0.1.0's drop-in for the host's journald is gone", async () => {
    await upgraded();
    assert.equal(await storeVersion(), SCHEMA_VERSION);
    assert.ok(!existsSync(`${systemd.root}${PREVIOUS_JOURNALD_DROPIN}`), `${PREVIOUS_JOURNALD_DROPIN} is gone`);
    const owner = await systemd.run(['dpkg-query', '-S', PREVIOUS_JOURNALD_DROPIN]);
    assert.notEqual(owner.code, 0, `no package owns it: ${owner.stdout}`);
  });

  /**
   * The way back: 0.1.0 installed over this version (dpkg cannot be stopped from doing it: see
   * docs/admin.md), used a while, then this version again.
   */
  interface Downgraded {
    /** Started by this version, held through the downgrade; ends under 0.1.0. */
    across: TaskView;
    /** Started and ended under 0.1.0, in the store this version migrated. */
    underOld: TaskView;
    /** A task 0.1.0 deleted. */
    deletedByOld: TaskView;
    /** Every task listed by 0.1.0, in its order. */
    listedByOld: string[];
  }
  let downgrading: Promise<Downgraded> | undefined;
  const downgraded = () =>
    (downgrading ??= (async () => {
      const { done, through } = await upgraded();
      if ((await newTask(through.taskId)).state !== 'exited') await signalMain(through.taskId, 'SIGCONT');
      const started = await newApi.post<TaskView>('/v1/tasks', {
        machine: 'echo',
        parameters: ['echo across: before the downgrade', 'sleep 6', 'echo across: under 0.1.0', 'return 8'],
      });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const across = started.body;
      await holdAfter(across.taskId, 'across: before the downgrade');
      await installRelease('previous');
      assert.equal(await installedVersion(), PREVIOUS_VERSION);
      const listed = await eventually(
        `${PREVIOUS_VERSION} to answer on TCP`,
        () => oldApi.get<{ taskId: string }[]>('/v1/tasks').catch((error: unknown) => ({ status: 0, body: error })),
        (answer) => answer.status !== 0,
      );
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      const listedByOld = (listed.body as { taskId: string }[]).map((task) => task.taskId);
      const underOldStart = await oldApi.post<TaskView>('/v1/tasks', {
        machine: 'echo',
        parameters: ['echo under the downgrade', 'return 6'],
      });
      assert.equal(underOldStart.status, 201, JSON.stringify(underOldStart.body));
      const underOld = await eventually(
        'the task started under 0.1.0 to end',
        async () => (await oldApi.get<TaskView>(`/v1/tasks/${underOldStart.body.taskId}`)).body,
        (task) => task.state === 'exited',
      );
      assert.equal((await oldApi.delete(`/v1/tasks/${done.taskId}`)).status, 200);
      await signalMain(across.taskId, 'SIGCONT');
      const acrossEnded = await eventually(
        'the task held across the downgrade to end under 0.1.0',
        async () => (await oldApi.get<TaskView>(`/v1/tasks/${across.taskId}`)).body,
        (task) => task.state === 'exited',
      );
      assert.equal(acrossEnded.exitCode, 8, await unitJournal(across.taskId));
      return { across, underOld, deletedByOld: done, listedByOld };
    })());

  let upgradingAgain: Promise<Downgraded> | undefined;
  const upgradedAgain = () =>
    (upgradingAgain ??= (async () => {
      const back = await downgraded();
      await installRelease('current');
      assert.match(await installedVersion(), new RegExp(`^${VERSION.replaceAll('.', '\\.')}(-\\d+)?$`));
      return back;
    })());

  test('0.1.0 installed over it runs on the migrated store, on TCP as it always did, and leaves nothing of this version listening', async () => {
    const { across, listedByOld, underOld } = await downgraded();
    const { done, through, whileDown } = await upgraded();
    assert.deepEqual(listedByOld, [through.taskId, whileDown.taskId, done.taskId, across.taskId], 'every task, in order');
    assert.equal(underOld.exitCode, 6);
    assert.equal((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
    for (const unit of ['tessia-task-runner.socket', 'tessia-task-runner-starter.socket', 'tessia-task-runner-files.socket']) {
      assert.notEqual((await systemd.systemctl('is-active', unit)).stdout.trim(), 'active', `${unit} is stopped`);
      assert.notEqual((await systemd.systemctl('is-enabled', unit)).stdout.trim(), 'enabled', `${unit} is not started at boot`);
    }
    // The store: still this version's schema (0.1.0 neither knows nor changes user_version), whole.
    assert.equal(await storeVersion(), SCHEMA_VERSION);
    assert.equal(await onStore("return db.pragma('integrity_check', { simple: true });"), 'ok');
  });

  test('this version again keeps every task as 0.1.0 left it, and writes the events of what 0.1.0 did', async () => {
    const { across, underOld, deletedByOld } = await upgradedAgain();
    const { through, whileDown } = await upgraded();
    const listed = await newApi.get<{ taskId: string }[]>('/v1/tasks');
    assert.deepEqual(
      listed.body.map((task) => task.taskId),
      [through.taskId, whileDown.taskId, across.taskId, underOld.taskId],
    );
    assert.deepEqual(pick(await newTask(underOld.taskId), FINISHED_FIELDS), pick(underOld, FINISHED_FIELDS));
    assert.equal((await newTask(across.taskId)).exitCode, 8);
    assert.equal(await storeVersion(), SCHEMA_VERSION);
    const events = await newApi.get<string>('/v1/events?after=0&follow=false');
    const seen = events.body
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { taskId: string; state: string; exitCode: number | null; recovered: boolean; deleted: boolean })
      .map((event) => [event.taskId, event.state, event.exitCode, event.recovered, event.deleted]);
    const last = (taskId: string) => seen.filter(([id]) => id === taskId).at(-1);
    assert.deepEqual(last(underOld.taskId), [underOld.taskId, 'exited', 6, true, false]);
    assert.deepEqual(last(across.taskId), [across.taskId, 'exited', 8, true, false]);
    assert.deepEqual(last(deletedByOld.taskId), [deletedByOld.taskId, 'exited', 5, true, true]);
    // Its output, which 0.1.0 could not show (it read the host's journal only), is whole again.
    const text = await textLogs(across.taskId);
    for (const line of ['across: before the downgrade', 'across: under 0.1.0']) {
      assert.equal(text.split('\n').filter((each) => each.endsWith(`: ${line}`)).length, 1, `"${line}" once in:\n${text}`);
    }
  });

  test("a newer release's store: the runner refuses it with what to do, exits 2, and systemd does not restart it", async () => {
    await upgradedAgain();
    const file = `${systemd.root}${STORE}`;
    await run('systemctl', 'stop', 'tessia-task-runner.service');
    await onStore(`db.pragma('user_version = ${SCHEMA_VERSION + 1}')`);
    const before = readFileSync(file);
    const since = (await run('date', '--utc', '+%Y-%m-%d %H:%M:%S')).trim();
    try {
      const started = await systemd.systemctl('start', 'tessia-task-runner.service');
      assert.notEqual(started.code, 0, 'systemctl start fails');
      // Longer than RestartSec=2s: a restart would have come.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const unit = await systemd.show('tessia-task-runner.service', ['ActiveState', 'Result', 'ExecMainStatus', 'NRestarts']);
      assert.deepEqual(unit, { ActiveState: 'failed', Result: 'exit-code', ExecMainStatus: '2', NRestarts: '0' });
      const said = await run('journalctl', '--no-pager', '-o', 'cat', '-u', 'tessia-task-runner.service', `--since=${since}`);
      assert.match(
        said,
        new RegExp(
          `is at schema version ${SCHEMA_VERSION + 1}, made by a newer tessia-task-runner; this one knows versions up to ${SCHEMA_VERSION}\\. Install the newer release again`,
        ),
      );
      assert.deepEqual(readFileSync(file), before, 'the store was not touched');
    } finally {
      await onStore(`db.pragma('user_version = ${SCHEMA_VERSION}')`);
      await systemd.systemctl('reset-failed', 'tessia-task-runner.service');
      await run('systemctl', 'start', 'tessia-task-runner.service');
    }
    assert.equal((await newApi.get('/v1/')).status, 200, 'starts again once the store is one it knows');
  });
});
