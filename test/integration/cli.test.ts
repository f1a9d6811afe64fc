/** The `task` command line against the running service: output, colours and exit codes. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { runnerSuite } from '../harness/suite.js';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForCollected, waitForState } from '../../src/embedded/runner-tasks.js';

/** Runs the CLI without blocking this process (a blocked event loop breaks the test client's keep-alive). */
function cli(url: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return cliWith({}, url, ...args);
}

function cliWith(
  env: Record<string, string>,
  url: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const inherited = { ...process.env };
  for (const name of ['TESSIA_RUNNER_TOKEN', 'TESSIA_RUNNER_TOKEN_FILE']) delete inherited[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_DIR, 'dist/cli/main.js'), 'task', ...args, '--url', url],
      { encoding: 'utf8', timeout: 60_000, env: { ...inherited, NO_COLOR: '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('tessia-task-runner task', () => {
  const suite = runnerSuite();

  test('start, logs -f (in colour, returning with the task), list, show, stop, delete — with exit codes', async () => {
    const url = suite.runner.baseUrl;
    const started = await cli(
      url,
      'start',
      'echo',
      '--parameters',
      JSON.stringify(['echo from the cli', 'log warning careful', 'sleep 1', 'return 3']),
    );
    assert.equal(started.code, 0, started.stderr);
    const taskId = started.stdout.trim();
    assert.match(taskId, /^[0-9a-f]{8}$/);
    const followed = await cli(url, 'logs', taskId, '-f', '--color');
    assert.equal(followed.code, 1, 'the task failed (exit code 3): logs -f says so');
    assert.match(followed.stdout, /tessia-echo: from the cli/);
    // eslint-disable-next-line no-control-regex -- the colour codes are what is checked
    assert.match(followed.stdout, /\x1b\[33m.*careful\x1b\[0m/, 'a warning in yellow');
    assert.match(followed.stderr, new RegExp(`-- task ${taskId} exited, exit code 3 --`));

    const ok = await cli(url, 'start', 'echo', '--parameters', '["echo fine"]');
    assert.equal((await cli(url, 'logs', ok.stdout.trim(), '-f')).code, 0, 'the task succeeded');
    assert.match((await cli(url, 'list')).stdout, new RegExp(`${taskId}\\texited`));
    assert.equal(JSON.parse((await cli(url, 'show', taskId)).stdout).exitCode, 3);

    const long = (await cli(url, 'start', 'echo', '--parameters', '["sleep 60"]')).stdout.trim();
    suite.started.add(long);
    assert.match((await cli(url, 'stop', long)).stdout, /stopping|exited/);
    await waitForState(suite.api, long, ['exited']);
    for (const id of [taskId, ok.stdout.trim(), long]) assert.equal((await cli(url, 'delete', id)).code, 0);
    await waitForCollected(suite.runner, `tessia-task-${long}.service`);
    assert.equal((await cli(url, 'show', taskId)).code, 3, 'no such task');
    assert.equal((await cli(url, 'start', 'no-such-machine')).code, 1);
    assert.equal((await cli(url, 'start')).code, 2, 'usage');
    assert.equal((await cli(url, 'start', 'echo', '--parameters', '{not json')).code, 2);
    assert.equal((await cli('http://127.0.0.1:1', 'list')).code, 5, 'unreachable');
  });

  test("start --wait and -f, and wait: the exit status is the task's outcome", async () => {
    const url = suite.runner.baseUrl;
    const waited = await cli(url, 'start', 'echo', '--parameters', '["sleep 1", "return 5"]', '--wait');
    assert.equal(waited.code, 1, waited.stderr);
    assert.match(waited.stdout, /^[0-9a-f]{8}\n$/);
    assert.match(waited.stderr, /exited, exit code 5 --/);
    const followed = await cli(url, 'start', 'echo', '--parameters', '["echo followed", "return 0"]', '-f');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /tessia-echo: followed/);
    const a = (await cli(url, 'start', 'echo', '--parameters', '["sleep 1"]')).stdout.trim();
    const b = (await cli(url, 'start', 'echo', '--parameters', '["sleep 2"]')).stdout.trim();
    const both = await cli(url, 'wait', a, b, '--timeout', '7');
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stderr, new RegExp(`task ${a} exited, exit code 0 --\\n-- task ${b} exited, exit code 0`));
    const failing = (await cli(url, 'start', 'echo', '--parameters', '["return 1"]')).stdout.trim();
    assert.equal((await cli(url, 'wait', a, failing)).code, 1, 'one failed');
    assert.equal((await cli(url, 'wait', '00000000')).code, 3, 'no such task');
    assert.equal((await cli(url, 'wait')).code, 2, 'usage');
  });

  test('--help for the commands, exit 0', async () => {
    const help = await cli(suite.runner.baseUrl, '--help');
    assert.equal(help.code, 0);
    for (const command of ['start', 'wait', 'list', 'show', 'stop', 'delete', 'logs'])
      assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    for (const command of ['start', 'list', 'show', 'stop', 'delete', 'logs']) {
      const own = await cli(suite.runner.baseUrl, command, '--help');
      assert.equal(own.code, 0);
      assert.match(own.stdout, new RegExp(`^Usage: tessia-task-runner task ${command} `));
      assert.match(own.stdout, /--token-file FILE/);
    }
  });
});

describe('tessia-task-runner task with tokens', () => {
  const token = 'cli-token-0123456789';
  const suite = runnerSuite({
    auth: { tokens: [{ name: 'cli', sha256: createHash('sha256').update(token).digest('hex'), scope: 'write' }] },
  });

  test('without the token it exits 4; with it from the environment or a file, it works; on the command line it is refused', async () => {
    assert.equal((await cli(suite.runner.baseUrl, 'list')).code, 4);
    const fromEnvironment = await cliWith({ TESSIA_RUNNER_TOKEN: token }, suite.runner.baseUrl, 'list');
    assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr);
    const file = join(mkdtempSync(join(tmpdir(), 'tessia-cli-token-')), 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const fromFile = await cli(suite.runner.baseUrl, 'list', '--token-file', file);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const fromFileVariable = await cliWith({ TESSIA_RUNNER_TOKEN_FILE: file }, suite.runner.baseUrl, 'list');
    assert.equal(fromFileVariable.code, 0, fromFileVariable.stderr);
    const onArgv = await cli(suite.runner.baseUrl, 'list', '--token', token);
    assert.equal(onArgv.code, 2);
    assert.match(onArgv.stderr, /--token is not accepted/);
    assert.ok(!onArgv.stderr.includes(token), 'the refusal does not repeat the token');
  });

  test("logs print what a task wrote without its escape sequences and control characters, in the CLI's own colours", async () => {
    const hostile = [
      'echo title\x1b]0;pwned\x07 clear\x1b[2J\x1b[H red\x1b[31m bell\x07 end',
      'log warning careful\x1b]52;c;cHduZWQ=\x07 done',
    ];
    const started = await cliWith(
      { TESSIA_RUNNER_TOKEN: token },
      suite.runner.baseUrl,
      'start',
      'echo',
      '--parameters',
      JSON.stringify(hostile),
    );
    assert.equal(started.code, 0, started.stderr);
    // The suite's own clean-up has no token: this task ends by itself, and is waited for below.
    const taskId = started.stdout.trim();
    const raw = await eventually(
      'the escape sequences in the API stream (so that there is something to strip)',
      async () => (await cliWith({ TESSIA_RUNNER_TOKEN: token }, suite.runner.baseUrl, 'logs', taskId, '--json')).stdout,
      (text) => text.includes('careful'),
    );
    assert.match(raw, /\\u001b\]0;pwned/, 'the task did write an OSC sequence');
    const followed = await cliWith({ TESSIA_RUNNER_TOKEN: token }, suite.runner.baseUrl, 'logs', taskId, '-f', '--color');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /tessia-echo: title clear red bell end\n/);
    // eslint-disable-next-line no-control-regex -- the CLI's own colour is what is checked
    assert.match(followed.stdout, /\x1b\[33m.* tessia-echo: careful done\x1b\[0m\n/, "the warning in the CLI's yellow");
    // eslint-disable-next-line no-control-regex -- what must not reach the terminal
    const withoutOwnColours = followed.stdout.replace(/\x1b\[(?:33|0|1;31|31|1|2)m/g, '');
    // eslint-disable-next-line no-control-regex -- what must not reach the terminal
    assert.doesNotMatch(withoutOwnColours, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    await waitForCollected(suite.runner, `tessia-task-${taskId}.service`);
  });
});
