/** What a task may do in its unit, proven from inside the task. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runnerSuite } from '../harness/suite.js';
import { journalOf, waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';

describe('the task sandbox', () => {
  const suite = runnerSuite();
  const start = (machine: string, parameters: unknown) => suite.start(machine, parameters);
  const report = async (taskId: string) =>
    Object.fromEntries(
      (await journalOf(suite.runner, taskId))
        .filter((line) => line.includes(':'))
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
    );

  test('a task runs as a non-root user, writes only its own directory and private /tmp, with no new privileges', async () => {
    const other = await start('probe', null);
    await waitForJournalLine(suite.runner, other.taskId, 'written');
    const task = await start('probe', null);
    await waitForJournalLine(suite.runner, task.taskId, 'written');
    const seen = await report(task.taskId);
    assert.notEqual(seen['uid'], '0');
    assert.notEqual(seen['uid'], (await report(other.taskId))['uid'], 'each task its own dynamic user');
    assert.equal(seen['etc'], 'denied');
    assert.equal(seen['usr'], 'denied');
    assert.equal(seen['run'], 'denied');
    assert.equal(seen['workdir'], 'writable');
    assert.match(seen['workdir-path'] ?? '', new RegExp(`^/var/lib/(private/)?tessia-tasks/${task.taskId}$`));
    assert.equal(seen['tmp'], 'writable');
    assert.equal(seen['tmp-entries']?.trim(), `probe-${task.taskId}`, "a private /tmp: only its own file, not the other task's");
    assert.equal(seen['nonewprivs'], '1');
    assert.equal(seen['capeff'], '0000000000000000');
  });

  test("a task cannot read another task's files or parameters", async () => {
    const victim = await start('probe', `secret-parameters-${process.pid}`);
    await waitForJournalLine(suite.runner, victim.taskId, 'written');
    const victimPid = (await suite.runner.systemd.show(victim.unit, ['MainPID']))['MainPID'];
    for (const path of [
      `/var/lib/tessia-tasks/${victim.taskId}/secret`,
      `/var/lib/private/tessia-tasks/${victim.taskId}/secret`,
      `/proc/${victimPid}/fd/0`,
    ]) {
      const thief = await start('read-path', path);
      await waitForState(suite.api, thief.taskId, ['exited']);
      await waitForJournalLine(suite.runner, thief.taskId, 'read:denied');
      const verdicts = (await journalOf(suite.runner, thief.taskId)).filter((line) => line.startsWith('read:'));
      assert.deepEqual(verdicts, ['read:denied'], `${path}: one verdict, a denial`);
      assert.ok(!(await journalOf(suite.runner, thief.taskId)).includes('read:allowed'), path);
    }
    // Those paths hold what they should: the denials above are the sandbox, not missing files.
    const secret = await suite.runner.systemd.run(['cat', `/var/lib/private/tessia-tasks/${victim.taskId}/secret`]);
    assert.equal(secret.stdout.trim(), `secret-${victim.taskId}`);
    const parameters = await suite.runner.systemd.run(['cat', `/proc/${victimPid}/fd/0`]);
    assert.equal(parameters.stdout, JSON.stringify(`secret-parameters-${process.pid}`));
  });

  test('a task over its memory limit is killed and ends with -3, its result reported', async () => {
    const task = await start('hog', null);
    const done = await waitForState(suite.api, task.taskId, ['exited'], 60_000);
    assert.equal(done.exitCode, -3);
    assert.ok(['oom-kill', 'signal'].includes(done.result), done.result);
    assert.match(done.detail, /out-of-memory|signal 9/);
    await waitForCollected(suite.runner, task.unit);
  });

  test("a task cannot reach the runner's API on loopback; a machine that allows loopback can", async () => {
    const url = `${suite.runner.baseUrl}/v1/`;
    const verdictOf = async (machine: string, expected: string) => {
      const task = await start(machine, url);
      await waitForState(suite.api, task.taskId, ['exited'], 30_000);
      await waitForJournalLine(suite.runner, task.taskId, expected);
      return (await journalOf(suite.runner, task.taskId)).filter((line) => line.startsWith('api:'));
    };
    assert.deepEqual(await verdictOf('reach-url', 'api:blocked'), ['api:blocked'], 'IPAddressDeny=localhost');
    // The same program reaches it when its machine opts out: the denial above is the sandbox's.
    assert.deepEqual(await verdictOf('reach-url-loopback', 'api:200'), ['api:200']);
  });

  test('systemd-analyze security rates a task unit 2.5 or better (it was 6.8 in 0.1.0)', async (t) => {
    const task = await start('sleeper', null);
    const analysis = await suite.runner.systemd.run(['systemd-analyze', 'security', '--no-pager', task.unit]);
    const overall = /Overall exposure level for \S+: (\d+\.\d+)/.exec(analysis.stdout);
    assert.ok(overall?.[1], `no overall level:\n${analysis.stdout}${analysis.stderr}`);
    assert.ok(Number(overall[1]) <= 2.5, `exposure ${overall[1]}:\n${analysis.stdout}`);
    t.diagnostic(`exposure of a task unit: ${overall[1]}`);
  });
});
