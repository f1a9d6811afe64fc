/**
 * The .deb end to end, in the private systemd (its root is an overlay: nothing installed here
 * reaches the machine): install, the service comes up as its own user, a task runs, the service
 * restarts and is upgraded without touching the task, then remove and purge leave nothing running.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PrivateSystemd, REPO_DIR } from '../harness/private-systemd.js';
import { client, eventually } from '../harness/http.js';

const VERSION = JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require('${REPO_DIR}/package.json').version)`], { encoding: 'utf8' }));
const OUT = join(REPO_DIR, 'packaging/out');
const ARCH = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const DEB = join(OUT, `tessia-task-runner_${VERSION}_${ARCH}.deb`);
const API = 'http://127.0.0.1:7356';

/** The package of this checkout: built unless it is there already and newer than every source. */
function buildDeb(): void {
  if (existsSync(DEB) && process.env['TESSIA_REBUILD_DEB'] !== '1') return;
  execFileSync('sh', [join(REPO_DIR, 'scripts/package-deb.sh')], { stdio: 'ignore', timeout: 15 * 60_000 });
}

describe('the Debian package', { timeout: 30 * 60_000 }, () => {
  const systemd = PrivateSystemd.fromEnvironment();
  const inside = '/run/tessia-test/package';
  const run = async (...argv: string[]) => {
    const result = await systemd.run(argv, { timeoutMs: 300_000 });
    assert.equal(result.code, 0, `${argv.join(' ')}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const api = client(API);

  before(() => {
    buildDeb();
    mkdirSync(`${systemd.root}${inside}`, { recursive: true });
    copyFileSync(DEB, `${systemd.root}${inside}/current.deb`);
    // The "newer version": the same package, repacked with a higher version.
    const unpacked = `${systemd.root}${inside}/unpacked`;
    rmSync(unpacked, { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-R', DEB, unpacked]);
    execFileSync('sed', ['-i', `s/^Version: .*/Version: ${VERSION}+upgrade1/`, `${unpacked}/DEBIAN/control`]);
    execFileSync('dpkg-deb', ['-b', unpacked, `${systemd.root}${inside}/newer.deb`], { stdio: 'ignore' });
  });
  after(async () => {
    // Whatever happened above, nothing of the package may stay installed or running.
    await systemd.run(['dpkg', '--purge', 'tessia-task-runner'], { timeoutMs: 120_000 });
  });

  let taskId = '';
  let taskPid = '';

  test('installs with dpkg and the service comes up by itself, as its own user', async () => {
    await run('dpkg', '-i', `${inside}/current.deb`);
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
    const reply = await api.post('/v1/tasks', { machine: 'echo', parameters: ['echo from the package', 'sleep 600'] });
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    assert.equal(reply.body.state, 'running');
    taskId = reply.body.taskId;
    taskPid = (await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'] ?? '';
    assert.match(taskPid, /^[1-9]\d*$/);
    const logs = await eventually(
      'the task output through the API (the runner reads the journal as its user)',
      async () => (await api.get(`/v1/tasks/${taskId}/logs?format=text`)).body as string,
      (text) => text.includes('from the package'),
    );
    assert.match(logs, /tessia-echo\[\d+\]: from the package/);
  });

  test('systemctl restart of the service leaves the task running and known', async () => {
    await run('systemctl', 'restart', 'tessia-task-runner.service');
    assert.equal((await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'], taskPid);
    assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'running');
  });

  test('an upgrade restarts the service, and the task runs on and stays known', async () => {
    const before = (await systemd.show('tessia-task-runner.service', ['MainPID']))['MainPID'];
    await run('dpkg', '-i', `${inside}/newer.deb`);
    assert.match(await run('dpkg-query', '-W', '-f=${Version}', 'tessia-task-runner'), /\+upgrade1$/);
    const service = await systemd.show('tessia-task-runner.service', ['MainPID', 'ActiveState']);
    assert.equal(service['ActiveState'], 'active');
    assert.notEqual(service['MainPID'], before, 'the service was restarted');
    assert.equal((await systemd.show(`tessia-task-${taskId}.service`, ['MainPID']))['MainPID'], taskPid);
    assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'running');
  });

  test('remove stops the service and every task; purge removes the state; nothing of ours is left running', async () => {
    await run('dpkg', '--remove', 'tessia-task-runner');
    assert.notEqual((await systemd.systemctl('is-active', 'tessia-task-runner.service')).stdout.trim(), 'active');
    const tasks = await systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-task-*');
    assert.equal(tasks.stdout.trim(), '');
    assert.equal((await systemd.run(['pgrep', '-u', 'tessia-task-runner'])).stdout.trim(), '');
    assert.ok(existsSync(`${systemd.root}/var/lib/tessia-task-runner/tasks.sqlite3`), 'remove keeps the history');
    await run('dpkg', '--purge', 'tessia-task-runner');
    assert.ok(!existsSync(`${systemd.root}/var/lib/tessia-task-runner`));
    assert.ok(!existsSync(`${systemd.root}/etc/tessia-task-runner`));
    assert.ok(!existsSync(`${systemd.root}/lib/systemd/system/tessia-task-runner.service`));
    await assert.rejects(fetch(`${API}/v1/`));
  });
});

