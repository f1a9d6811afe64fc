/**
 * The .deb end to end, in the private systemd (its root is an overlay: nothing installed here
 * reaches the machine): install, the service comes up as its own user, a task runs, the service
 * restarts and is upgraded without touching the task, then remove and purge leave nothing running.
 * The package is built fresh from this checkout by the suite itself, never taken from an earlier build —
 * or, when the offline build suite (package-build.test.ts) ran before it in the same test run, it is
 * the .deb that suite built from this checkout's source package with no network.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { APP_DIR_INSIDE, PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { client } from '../../src/embedded/api-client.js';
import { eventually } from '../../src/embedded/eventually.js';
import { TASK_UNIT_GLOB } from '../../src/tasks/unit-names.js';
import { ADMIN_GROUP, PACKAGE_API_SOCKET, TASK_LOG_NAMESPACE } from '../../src/package-layout.js';
import { skipUnlessInstalled } from '../harness/requirements.js';
import { freshDeb, holdPackageTurn } from '../harness/deb-package.js';
import { cockpitDebBeside } from '../harness/offline-deb.js';

const execFileAsync = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version;
const API = 'http://127.0.0.1:7356';
/** Where the package installs the settings of the tasks' journald (the test system installs the same file there at boot). */
const NAMESPACE_DROPIN = `/usr/lib/systemd/journald@${TASK_LOG_NAMESPACE}.conf.d/60-tessia-task-runner.conf`;

const SKIP = skipUnlessInstalled(
  // What dpkg-buildpackage checks (Build-Depends), what it runs, and what the package needs installed.
  ['dh', 'dpkg-buildpackage', 'dpkg-deb', 'fakeroot', 'lintian', 'python3', 'make', 'g++', 'pkcheck'],
  'the Debian package suite needs the packaging tools, a compiler and polkit: apt-get install debhelper dpkg-dev fakeroot lintian python3 make g++ polkitd (.ci/run does)',
);

describe('the Debian package', { timeout: 30 * 60_000, skip: SKIP }, () => {
  const systemd = PrivateSystemd.fromEnvironment();
  const inside = '/run/tessia-test/package';
  const run = async (...argv: string[]) => {
    const result = await systemd.run(argv, { timeoutMs: 300_000 });
    assert.equal(result.code, 0, `${argv.join(' ')}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  // As root, through the package's Unix socket: over TCP, callers who show nothing may do nothing.
  const api = client(API, { socketPath: `${systemd.root}${PACKAGE_API_SOCKET}` });
  /** Runs `argv` inside as `user`, with the user's groups. */
  const as = (user: string, ...argv: string[]) => systemd.runAs(user, argv);
  /** The overall exposure level `systemd-analyze security` gives `unit`, and its table for messages. */
  const exposureOf = async (unit: string) => {
    const analysis = await systemd.run(['systemd-analyze', 'security', '--no-pager', unit]);
    const level = /Overall exposure level for \S+: (\d+\.\d+)/.exec(analysis.stdout)?.[1];
    assert.ok(level, `no overall level for ${unit}:\n${analysis.stdout}${analysis.stderr}`);
    return { level: Number(level), table: analysis.stdout };
  };

  let deb = '';
  let bootDropin: Buffer | undefined;
  let releaseTurn: (() => void) | undefined;
  before(async () => {
    // The upgrade suite installs the package in the same system, and builds in the same directory.
    releaseTurn = await holdPackageTurn(systemd, 'package.test.ts');
    deb = await freshDeb();
    // A directory of the suite's own inside the private system, holding exactly the file just built.
    rmSync(`${systemd.root}${inside}`, { recursive: true, force: true });
    mkdirSync(`${systemd.root}${inside}`, { recursive: true });
    copyFileSync(deb, `${systemd.root}${inside}/current.deb`);
    // The "newer version": the same package, repacked with a higher version.
    const unpacked = `${systemd.root}${inside}/unpacked`;
    execFileSync('dpkg-deb', ['-R', `${systemd.root}${inside}/current.deb`, unpacked]);
    execFileSync('sed', ['-i', `s/^Version: .*/Version: ${VERSION}+upgrade1/`, `${unpacked}/DEBIAN/control`]);
    execFileSync('dpkg-deb', ['-b', unpacked, `${systemd.root}${inside}/newer.deb`], { stdio: 'ignore' });
    // The tasks' journald reads the package's file, not the copy the test system installed at boot:
    // the copy goes, and that journald stops, so the package's first task starts it with the package's.
    bootDropin = readFileSync(`${systemd.root}${NAMESPACE_DROPIN}`);
    rmSync(`${systemd.root}${NAMESPACE_DROPIN}`);
    await run('systemctl', 'stop', `systemd-journald@${TASK_LOG_NAMESPACE}.service`);
  });
  after(async () => {
    // Whatever happened above, nothing of the package may stay installed or running.
    await systemd.run(['dpkg', '--purge', 'cockpit-tessia-task-runner', 'tessia-task-runner'], { timeoutMs: 120_000 });
    // The test system's own copy back, for the suites that follow.
    if (bootDropin) {
      mkdirSync(dirname(`${systemd.root}${NAMESPACE_DROPIN}`), { recursive: true });
      writeFileSync(`${systemd.root}${NAMESPACE_DROPIN}`, bootDropin);
      await systemd.run(['systemctl', 'try-restart', `systemd-journald@${TASK_LOG_NAMESPACE}.service`]);
    }
    releaseTurn?.();
  });

  // Shared set-up, made by whichever test needs it first, so that every test also runs alone
  // (--test-name-pattern): the package installed once, and one task running under it.
  let installing: Promise<void> | undefined;
  const installed = () => (installing ??= run('dpkg', '-i', `${inside}/current.deb`).then(() => undefined));
  let starting: Promise<{ taskId: string; pid: string; reply: { status: number; body: any } }> | undefined;
  const runningTask = () =>
    (starting ??= (async () => {
      await installed();
      const reply = await api.post('/v1/tasks', { machine: 'echo', parameters: ['echo from the package', 'sleep 600'] });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      const taskId = reply.body.taskId as string;
      const pid = (await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'] ?? '';
      assert.match(pid, /^[1-9]\d*$/, 'the task has a main process');
      return { taskId, pid, reply };
    })());

  test('lintian finds no error and no warning in the package just built, but those its overrides justify (docs/admin.md)', async () => {
    const result = await execFileAsync('lintian', ['--fail-on', 'error,warning', '--tag-display-limit', '0', deb], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: unknown) => error as { stdout: string; stderr: string; code: number });
    assert.ok(!('code' in result) || result.code === 0, `lintian:\n${result.stdout}${result.stderr}`);
    assert.doesNotMatch(`${result.stdout}${result.stderr}`, /^[EW]: /m);
  });

  test('ships the manual pages, which the units name as their documentation', () => {
    const contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' });
    for (const page of ['man8/tessia-task-runner.8.gz', 'man5/tessia-task-runner.yaml.5.gz']) {
      assert.match(contents, new RegExp(` \\./usr/share/man/${page.replaceAll('.', '\\.')}$`, 'm'), page);
    }
    const unit = execFileSync(
      'sh',
      ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./lib/systemd/system/tessia-task-runner.service', 'sh', deb],
      {
        encoding: 'utf8',
      },
    );
    assert.match(unit, /^Documentation=man:tessia-task-runner\(8\) man:tessia-task-runner\.yaml\(5\)$/m);
  });

  test('installs with dpkg and the service comes up by itself, as its own user', async () => {
    await installed();
    assert.equal(
      await run('dpkg-query', '-W', '-f=${Version}', 'tessia-task-runner'),
      `${VERSION}-1`,
      'the package just built is the one installed',
    );
    assert.equal((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
    assert.equal((await systemd.systemctl('is-enabled', 'tessia-task-runner.service')).stdout.trim(), 'enabled');
    const service = await systemd.show('tessia-task-runner.service', ['User', 'MainPID', 'Type', 'StatusText']);
    assert.equal(service['User'], 'tessia-task-runner');
    assert.equal(service['Type'], 'notify');
    const user = await run('ps', '-o', 'user=', '-p', service['MainPID'] ?? '0');
    assert.equal(user.trim(), 'tessia-task-runner');
    assert.deepEqual((await api.get('/v1/')).body, { success: true });
    assert.match(await run('cat', '/etc/tessia-task-runner/config.yaml'), /listen: 127\.0\.0\.1:7356/);
    assert.match(await run('dpkg-query', '-W', '-f=${Conffiles}', 'tessia-task-runner'), /\/etc\/tessia-task-runner\/config\.yaml/);
  });

  test('starts a task through the API, as an unprivileged service allowed by polkit', async () => {
    const { taskId, reply } = await runningTask();
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    assert.equal(reply.body.state, 'running');
    const logs = await eventually(
      'the task output through the API (the runner reads the journal as its user)',
      async () => (await api.get(`/v1/tasks/${taskId}/logs?format=text`)).body as string,
      (text) => text.includes('from the package'),
    );
    // The wait saw the text somewhere; the task's own line, with its identifier and pid, once.
    const own = logs.split('\n').filter((line) => / tessia-echo\[\d+\]: from the package$/.test(line));
    assert.equal(own.length, 1, logs);
    assert.match(logs, /tessia-echo\[\d+\]: from the package/);
  });

  test("a tessia-mesh machine runs through the package's host, and its check refuses bad parameters in a unit of its own", async () => {
    await installed();
    assert.equal((await run('stat', '-c', '%a', '/usr/lib/tessia-task-runner/dist/machines/tessia/host.py')).trim(), '644');
    const configFile = `${systemd.root}/etc/tessia-task-runner/config.yaml`;
    const shipped = readFileSync(configFile, 'utf8');
    const fixture = `${APP_DIR_INSIDE}/test/fixtures/tessia-mesh/src`;
    try {
      // The shipped config, with a tessia machine added: as an admin would add it.
      const withMachine = shipped.replace(
        /^machines:.*$/m,
        `machines:\n  tessia-echo:\n    tessia:\n      class: task_runner.machines.echo.machine:EchoMachine\n      pythonPath: [${fixture}]`,
      );
      assert.notEqual(withMachine, shipped, 'the shipped config has a machines section');
      writeFileSync(configFile, withMachine);
      await run('systemctl', 'reload', 'tessia-task-runner.service');
      const refused = await eventually(
        'the reloaded config',
        () => api.post('/v1/tasks', { machine: 'tessia-echo', parameters: ['echo fine', 'frobnicate'] }),
        (reply) => reply.status !== 400 || reply.body.code !== 'UNKNOWN_MACHINE',
      );
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.detail, 'SyntaxError: Invalid command … (EchoMachine, line 2)');
      const started = await api.post('/v1/tasks', { machine: 'tessia-echo', parameters: ['echo from the tessia host'] });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const ended = await eventually(
        'the tessia task to end',
        async () => (await api.get(`/v1/tasks/${started.body.taskId as string}`)).body,
        (task) => task.state === 'exited',
      );
      assert.equal(ended.exitCode, 0);
      await eventually(
        'its output through the API',
        async () => (await api.get(`/v1/tasks/${started.body.taskId as string}/logs?format=text`)).body as string,
        (text) => text.includes('from the tessia host'),
      );
      assert.equal((await systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-check-*')).stdout.trim(), '');
    } finally {
      writeFileSync(configFile, shipped);
      await run('systemctl', 'reload', 'tessia-task-runner.service');
    }
  });

  test("task output goes to the tasks' journal namespace, whose journald runs with the package's settings", async () => {
    const { taskId } = await runningTask();
    const unit = `tessia-task-${taskId}.service`;
    assert.equal((await run('dpkg-query', '-S', NAMESPACE_DROPIN)).trim(), `tessia-task-runner: ${NAMESPACE_DROPIN}`);
    assert.equal(
      await run('cat', NAMESPACE_DROPIN),
      readFileSync(join(REPO_DIR, 'units', `journald@${TASK_LOG_NAMESPACE}.conf.d/60-tessia-task-runner.conf`), 'utf8'),
    );
    assert.equal((await systemd.show(unit, ['LogNamespace']))['LogNamespace'], TASK_LOG_NAMESPACE);
    const namespaced = await eventually(
      "the task's line in the namespace",
      () => run('journalctl', `--namespace=${TASK_LOG_NAMESPACE}`, '--no-pager', '-o', 'cat', `_SYSTEMD_UNIT=${unit}`),
      (text) => text.includes('from the package'),
    );
    assert.equal(namespaced.split('\n').filter((line) => line === 'from the package').length, 1, namespaced);
    assert.equal((await run('journalctl', '--no-pager', '-o', 'cat', `_SYSTEMD_UNIT=${unit}`)).trim(), '', 'nothing in the host journal');
    // That journald started with the package's file, not its defaults: it reports the package's
    // SystemMaxUse=2G (its default is 10 % of the file system, at most 4 GiB).
    const usage = await run(
      'journalctl',
      `--namespace=${TASK_LOG_NAMESPACE}`,
      '--no-pager',
      '-o',
      'cat',
      '-u',
      `systemd-journald@${TASK_LOG_NAMESPACE}.service`,
      '--grep',
      '^System Journal .* is ',
    );
    assert.match(usage.trim().split('\n').at(-1) ?? '', /, max 2\.0G, /, usage);
  });

  test('its task units are started by the privileged starter, which runs as root without network', async () => {
    const { taskId } = await runningTask();
    const starter = await systemd.show('tessia-task-runner-starter.service', [
      'ActiveState',
      'MainPID',
      'PrivateNetwork',
      'CapabilityBoundingSet',
    ]);
    assert.equal(starter['ActiveState'], 'active', 'started by its socket on the first task');
    assert.equal((await run('ps', '-o', 'user=', '-p', starter['MainPID'] ?? '0')).trim(), 'root');
    assert.equal(starter['PrivateNetwork'], 'yes');
    assert.equal(starter['CapabilityBoundingSet'], '');
    // Verbose: the task id is a field of the entry (or, without the native journal transport, in its text).
    const said = await run(
      'journalctl',
      '--no-pager',
      '-o',
      'verbose',
      '-u',
      'tessia-task-runner-starter.service',
      '--grep',
      'task unit started',
    );
    assert.match(said, new RegExp(`TESSIA_TASK_ID=${taskId}`));
    const socket = await run('stat', '-c', '%U:%G %a', '/run/tessia-task-runner-starter.sock');
    assert.equal(socket.trim(), 'root:tessia-task-runner 660');
  });

  test("the runner's user cannot start a unit of its own, nor stop one that is not a task", async () => {
    await installed();
    /** A call of systemd's Manager, as the runner's user, with busctl's signature and arguments. */
    const managerCallAsRunner = (method: string, signature: string, ...args: string[]) =>
      as(
        'tessia-task-runner',
        'busctl',
        'call',
        'org.freedesktop.systemd1',
        '/org/freedesktop/systemd1',
        'org.freedesktop.systemd1.Manager',
        method,
        signature,
        ...args,
      );
    const evil = await managerCallAsRunner(
      'StartTransientUnit',
      'ssa(sv)a(sa(sv))',
      'evil.service',
      'fail',
      '2',
      'ExecStart',
      'a(sasb)',
      '1',
      '/bin/touch',
      '2',
      '/bin/touch',
      '/root/pwned',
      'false',
      'User',
      's',
      'root',
      '0',
    );
    assert.notEqual(evil.code, 0, `StartTransientUnit was allowed: ${evil.stdout}`);
    assert.match(evil.stderr, /Access denied|authentication required|not allowed/i);
    assert.equal((await systemd.run(['test', '-e', '/root/pwned'])).code, 1, 'no file appeared');
    assert.equal((await systemd.show('evil.service', ['LoadState']))['LoadState'], 'not-found');
    const stopDbus = await managerCallAsRunner('StopUnit', 'ss', 'dbus.service', 'replace');
    assert.notEqual(stopDbus.code, 0, 'StopUnit of a unit that is not a task was allowed');
    // The same user may still stop a task unit: the runner's stop path.
    const { taskId } = await (async () => {
      const reply = await api.post('/v1/tasks', { machine: 'echo', parameters: ['sleep 600'] });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body as { taskId: string };
    })();
    const stopTask = await managerCallAsRunner('StopUnit', 'ss', `tessia-task-${taskId}.service`, 'replace');
    assert.equal(stopTask.code, 0, stopTask.stderr);
  });

  test('a local user may not drive the runner; root and tessia-task-runner-admin may, with the CLI, without a token', async () => {
    const { taskId } = await runningTask();
    const tasksBefore = (await api.get('/v1/tasks')).body.length as number;
    await run('useradd', '--no-create-home', 'tessia-test-mallory');
    await run('useradd', '--no-create-home', '--groups', ADMIN_GROUP, 'tessia-test-alice');
    try {
      const cli = (user: string, ...argv: string[]) => as(user, 'tessia-task-runner', 'task', ...argv);
      // Not a member: the socket is closed to them, and over TCP they are anonymous, who may do nothing.
      const refused = await cli('tessia-test-mallory', 'start', 'echo', '--parameters', '["echo from mallory"]');
      assert.equal(refused.code, 4, `${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`EACCES[\\s\\S]*members of ${ADMIN_GROUP}`));
      for (const argv of [
        ['start', 'echo', '--parameters', '["echo from mallory"]'],
        ['stop', taskId],
        ['delete', taskId],
        ['logs', taskId],
        ['list'],
      ]) {
        const overTcp = await cli('tessia-test-mallory', '--url', API, ...argv);
        assert.equal(overTcp.code, 4, `${argv.join(' ')} over TCP: ${overTcp.stdout}${overTcp.stderr}`);
        assert.match(overTcp.stderr, /401/);
        assert.doesNotMatch(overTcp.stdout, /from the package/);
      }
      assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'running', 'the task was not touched');
      assert.equal((await api.get('/v1/tasks')).body.length, tasksBefore, 'nothing was started');
      // A member of the admin group, and root: the CLI finds the socket by itself; no token anywhere.
      const started = await cli('tessia-test-alice', 'start', 'echo', '--parameters', '["echo from alice"]');
      assert.equal(started.code, 0, started.stderr);
      const aliceTask = started.stdout.trim();
      assert.match(aliceTask, /^[0-9a-f]{8}$/);
      const listed = await systemd.run(['tessia-task-runner', 'task', 'list']);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(aliceTask));
      assert.equal((await cli('tessia-test-alice', 'delete', aliceTask)).code, 0);
      const socket = await run('stat', '-c', '%U:%G %a', PACKAGE_API_SOCKET);
      assert.equal(socket.trim(), `root:${ADMIN_GROUP} 660`);
    } finally {
      await systemd.run(['userdel', 'tessia-test-mallory']);
      await systemd.run(['userdel', 'tessia-test-alice']);
    }
  });

  test("a task's files download through the files service; the runner's user cannot read them itself", async () => {
    await installed();
    // A machine that leaves files (and a link to a secret), added as an admin would, applied by a reload.
    const config = `${await run('cat', '/etc/tessia-task-runner/config.yaml')}
  writes-files:
    exec: [/bin/sh, -c, "mkdir -p out && echo from the package > out/result.txt && ln -s /etc/shadow shadow"]
`;
    writeFileSync(`${systemd.root}/etc/tessia-task-runner/config.yaml`, config);
    await run('systemctl', 'reload', 'tessia-task-runner.service');
    const started = await api.post('/v1/tasks', { machine: 'writes-files', parameters: null });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const taskId = started.body.taskId as string;
    await eventually(
      'the task ended',
      async () => (await api.get(`/v1/tasks/${taskId}`)).body.state,
      (state) => state === 'exited',
    );
    const listing = await api.get(`/v1/tasks/${taskId}/files`);
    if (listing.status !== 200) {
      const journal = await run(
        'journalctl',
        '--no-pager',
        '-o',
        'cat',
        '-u',
        'tessia-task-runner-files.service',
        '-u',
        'tessia-task-runner-files.socket',
      );
      assert.fail(`${listing.status} ${JSON.stringify(listing.body)}; the files service said:\n${journal}`);
    }
    assert.deepEqual(
      listing.body.files.map((file: { path: string }) => file.path),
      ['out', 'out/result.txt'],
    );
    const file = await api.get(`/v1/tasks/${taskId}/files/out/result.txt`);
    assert.equal(file.status, 200, JSON.stringify(file.body));
    assert.equal(file.body, 'from the package\n');
    const link = await api.get(`/v1/tasks/${taskId}/files/shadow`);
    assert.equal(link.status, 400);
    assert.equal(link.body.code, 'NOT_A_FILE');

    // Read by the files service, a dynamic user with the capabilities to read and remove, started by its socket.
    const service = await systemd.show('tessia-task-runner-files.service', ['ActiveState', 'MainPID', 'DynamicUser', 'PrivateNetwork']);
    assert.equal(service['ActiveState'], 'active');
    assert.equal(service['DynamicUser'], 'yes');
    assert.equal(service['PrivateNetwork'], 'yes');
    assert.notEqual((await run('ps', '-o', 'uid=', '-p', service['MainPID'] ?? '0')).trim(), '0', 'not root');
    const status = await run('cat', `/proc/${service['MainPID']}/status`);
    // CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2), CAP_FOWNER (3): nothing else.
    assert.match(status, /^CapEff:\s+000000000000000e$/m);
    assert.match(status, /^CapBnd:\s+000000000000000e$/m);
    assert.equal((await run('stat', '-c', '%U:%G %a', '/run/tessia-task-runner-files.sock')).trim(), 'root:tessia-task-runner 660');

    // The runner's user cannot read them: the directory is the task's user's, under root's /var/lib/private.
    for (const path of [`/var/lib/private/tessia-tasks/${taskId}/out/result.txt`, `/var/lib/tessia-tasks/${taskId}/out/result.txt`]) {
      const direct = await as('tessia-task-runner', 'cat', path);
      assert.notEqual(direct.code, 0, `${path} was readable by the runner's user`);
      assert.match(direct.stderr, /Permission denied/);
    }
    assert.equal(
      (await run('cat', `/var/lib/private/tessia-tasks/${taskId}/out/result.txt`)).trim(),
      'from the package',
      'root can: the file is there',
    );

    // The files service removes a task's directory when asked (what the retention of tasks will ask).
    const removal = await as(
      'tessia-task-runner',
      '/usr/bin/node',
      '--input-type=module',
      '-e',
      "const { FilesClient } = await import('/usr/lib/tessia-task-runner/dist/files/client.js'); const c = new FilesClient('/run/tessia-task-runner-files.sock'); console.log(await c.remove(process.argv[1])); c.close();",
      taskId,
    );
    assert.equal(removal.stdout.trim(), 'true', removal.stderr);
    assert.ok(!existsSync(`${systemd.root}/var/lib/private/tessia-tasks/${taskId}`));
    assert.deepEqual((await api.get(`/v1/tasks/${taskId}/files`)).body, { files: [], truncated: false });
  });

  test("a task cannot reach the runner's API: its unit denies loopback", async () => {
    const { taskId } = await runningTask();
    const denied = await systemd.show(`tessia-task-${taskId}.service`, ['IPAddressDeny']);
    assert.deepEqual((denied['IPAddressDeny'] ?? '').split(' ').sort(), ['127.0.0.0/8', '::1/128']);
  });

  test('systemd-analyze security: the runner 2.0 or better, a task unit 2.5 or better (0.1.0: 3.4 and 6.8)', async (t) => {
    const { taskId } = await runningTask();
    const runner = await exposureOf('tessia-task-runner.service');
    assert.ok(runner.level <= 2.0, `the runner's unit: ${runner.level}\n${runner.table}`);
    const task = await exposureOf(`tessia-task-${taskId}.service`);
    assert.ok(task.level <= 2.5, `a task unit: ${task.level}\n${task.table}`);
    const starter = await exposureOf('tessia-task-runner-starter.service');
    const files = await exposureOf('tessia-task-runner-files.service');
    assert.ok(files.level <= 1.0, `the files service: ${files.level}\n${files.table}`);
    // The figures for docs/security.md (the starter is root by design: no target).
    t.diagnostic(`exposure: runner ${runner.level}, task ${task.level}, starter ${starter.level}, files ${files.level}`);
  });

  test('the Unix socket outlives restarts of the service, and a connection starts a stopped one', async () => {
    await installed();
    await run('systemctl', 'restart', 'tessia-task-runner.service');
    assert.equal((await api.get('/v1/')).status, 200, 'after a restart');
    await run('systemctl', 'stop', 'tessia-task-runner.service');
    assert.ok(existsSync(`${systemd.root}${PACKAGE_API_SOCKET}`), 'the socket stays while the service is stopped');
    assert.equal((await api.get('/v1/')).status, 200, 'the connection started it');
    assert.equal((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
  });

  test('systemctl restart of the service leaves the task running and known', async () => {
    const { taskId, pid } = await runningTask();
    const before = (await systemd.show('tessia-task-runner.service', ['MainPID']))['MainPID'];
    await run('systemctl', 'restart', 'tessia-task-runner.service');
    assert.notEqual((await systemd.show('tessia-task-runner.service', ['MainPID']))['MainPID'], before, 'the service was restarted');
    assert.equal((await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'], pid);
    assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'running');
  });

  test('an upgrade restarts the service, and the task runs on and stays known', async () => {
    const { taskId, pid } = await runningTask();
    const before = (await systemd.show('tessia-task-runner.service', ['MainPID']))['MainPID'];
    await run('dpkg', '-i', `${inside}/newer.deb`);
    assert.match(await run('dpkg-query', '-W', '-f=${Version}', 'tessia-task-runner'), /\+upgrade1$/);
    const service = await systemd.show('tessia-task-runner.service', ['MainPID', 'ActiveState']);
    assert.equal(service['ActiveState'], 'active');
    assert.notEqual(service['MainPID'], before, 'the service was restarted');
    assert.equal((await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'], pid);
    assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'running');
  });

  test(
    "the Cockpit page's package: lintian finds nothing, Cockpit finds the page, the runner's package holds none of it, and it removes cleanly",
    {
      skip: skipUnlessInstalled(
        ['cockpit-bridge'],
        "the Cockpit page's package needs Cockpit: apt-get install cockpit-bridge (.ci/run does)",
      ),
    },
    async () => {
      const cockpitDeb = cockpitDebBeside(deb);
      assert.ok(existsSync(cockpitDeb), `${cockpitDeb} was built with the runner's package`);
      const lint = await execFileAsync('lintian', ['--fail-on', 'error,warning', '--tag-display-limit', '0', cockpitDeb]).catch(
        (error: unknown) => error as { stdout: string; stderr: string; code: number },
      );
      assert.ok(!('code' in lint) || lint.code === 0, `lintian:\n${lint.stdout}${lint.stderr}`);
      assert.doesNotMatch(`${lint.stdout}${lint.stderr}`, /^[EW]: /m);
      const runnerFiles = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      assert.doesNotMatch(runnerFiles, /dist\/cockpit/, "the runner's package does not carry the page");
      await installed();
      copyFileSync(cockpitDeb, `${systemd.root}${inside}/cockpit.deb`);
      await run('dpkg', '-i', `${inside}/cockpit.deb`);
      const page = '/usr/share/cockpit/tessia-task-runner';
      for (const file of ['manifest.json', 'index.html', 'main.js', 'patternfly.css'])
        assert.ok(existsSync(`${systemd.root}${page}/${file}`), file);
      // With administrative access the page drives the runner as root: none of it writable but by root.
      assert.equal(await run('find', page, '(', '!', '-user', 'root', '-o', '-perm', '/022', ')', '-print'), '');
      assert.match(await run('cockpit-bridge', '--packages'), /^tessia-task-runner\b/m, 'the bridge lists the package');
      await run('dpkg', '--remove', 'cockpit-tessia-task-runner');
      assert.ok(!existsSync(`${systemd.root}${page}`), 'nothing of the page is left');
      assert.doesNotMatch(await run('cockpit-bridge', '--packages'), /^tessia-task-runner\b/m);
    },
  );

  test('remove stops the service and every task; purge removes the state; nothing of ours is left running', async () => {
    const { taskId } = await runningTask();
    assert.equal(
      (await systemd.show(`tessia-task-${taskId}.service`, ['ActiveState']))['ActiveState'],
      'active',
      'a task runs before the remove',
    );
    await run('dpkg', '--remove', 'tessia-task-runner');
    assert.notEqual((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
    const tasks = await systemd.systemctl('list-units', '--all', '--plain', '--no-legend', TASK_UNIT_GLOB);
    assert.equal(tasks.stdout.trim(), '');
    for (const unit of [
      'tessia-task-runner-starter.service',
      'tessia-task-runner-starter.socket',
      'tessia-task-runner-files.service',
      'tessia-task-runner-files.socket',
    ]) {
      assert.notEqual((await systemd.systemctl('is-active', unit)).stdout.trim(), 'active', `${unit} is stopped`);
    }
    assert.ok(!existsSync(`${systemd.root}/run/tessia-task-runner-starter.sock`), 'the starter socket is gone');
    assert.ok(!existsSync(`${systemd.root}/run/tessia-task-runner-files.sock`), 'the files socket is gone');
    assert.equal((await systemd.show(`tessia-task-${taskId}.service`, ['LoadState']))['LoadState'], 'not-found', 'the task unit is gone');
    assert.equal((await systemd.run(['pgrep', '-u', 'tessia-task-runner'])).stdout.trim(), '');
    assert.ok(existsSync(`${systemd.root}/var/lib/tessia-task-runner/tasks.sqlite3`), 'remove keeps the history');
    await run('dpkg', '--purge', 'tessia-task-runner');
    assert.ok(!existsSync(`${systemd.root}/var/lib/tessia-task-runner`));
    assert.deepEqual(
      readdirSync(`${systemd.root}/var/log/journal`).filter((name) => name.endsWith(`.${TASK_LOG_NAMESPACE}`)),
      [],
      'the task output is gone',
    );
    assert.ok(!existsSync(`${systemd.root}${NAMESPACE_DROPIN}`), "the tasks' journald settings are gone");
    assert.ok(!existsSync(`${systemd.root}/etc/tessia-task-runner`));
    assert.ok(!existsSync(`${systemd.root}/lib/systemd/system/tessia-task-runner.service`));
    await assert.rejects(fetch(`${API}/v1/`));
    assert.ok(!existsSync(`${systemd.root}${PACKAGE_API_SOCKET}`), 'the API socket is gone');
  });
});
