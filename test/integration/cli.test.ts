/** The `task` command line against the running service: output, colours and exit codes. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { runnerSuite } from '../harness/suite.js';
import { waitForCollected, waitForState } from '../../src/embedded/runner-tasks.js';

/** Runs the CLI without blocking this process (a blocked event loop breaks the test client's keep-alive). */
function cli(url: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_DIR, 'dist/cli/main.js'), 'task', ...args, '--url', url],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '' } },
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

  test('--help for the commands, exit 0', async () => {
    const help = await cli(suite.runner.baseUrl, '--help');
    assert.equal(help.code, 0);
    for (const command of ['start', 'list', 'show', 'stop', 'delete', 'logs']) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    for (const command of ['start', 'list', 'show', 'stop', 'delete', 'logs']) {
      const own = await cli(suite.runner.baseUrl, command, '--help');
      assert.equal(own.code, 0);
      assert.match(own.stdout, new RegExp(`^Usage: tessia-task-runner task ${command} `));
      assert.match(own.stdout, /--token TOKEN/);
    }
  });
});

describe('tessia-task-runner task with tokens', () => {
  const token = 'cli-token-0123456789';
  const suite = runnerSuite({
    auth: { tokens: [{ name: 'cli', sha256: createHash('sha256').update(token).digest('hex'), scope: 'write' }] },
  });

  test('without the token it exits 4; with it, it works', async () => {
    assert.equal((await cli(suite.runner.baseUrl, 'list')).code, 4);
    const listed = await cli(suite.runner.baseUrl, 'list', '--token', token);
    assert.equal(listed.code, 0, listed.stderr);
  });
});
