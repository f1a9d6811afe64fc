import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO_DIR } from '../harness/private-systemd.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-cli-'));
after(() => rmSync(directory, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(REPO_DIR, 'dist/cli/main.js'), ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' },
  });
}

test('serve refuses an invalid config with exit code 2 and names the key and the problem', () => {
  const path = join(directory, 'bad.yaml');
  writeFileSync(path, 'machines:\n  echo:\n    builtin: echo\n    limits:\n      memoryMax: lots\n');
  const run = cli('serve', '--config', path);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /machines\.echo\.limits\.memoryMax: "lots" is not a size/);
});

test('serve refuses a config that is not YAML with exit code 2', () => {
  const path = join(directory, 'broken.yaml');
  writeFileSync(path, 'machines: [\n');
  const run = cli('serve', '--config', path);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /is not valid YAML/);
});

test('serve refuses a --listen that is not HOST:PORT with exit code 2', () => {
  const run = cli('serve', '--listen', 'nonsense', '--state-dir', join(directory, 'state'));
  assert.equal(run.status, 2);
  assert.match(run.stderr, /listen: must be HOST:PORT/);
});

test('serve refuses unknown flags with exit code 2', () => {
  const run = cli('serve', '--colour', 'blue');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--colour/);
});

test('an unknown command prints the usage and exits 2', () => {
  const run = cli('fly');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /unknown command: fly/);
  assert.match(run.stderr, /Usage: tessia-task-runner serve/);
});

test('--help prints the usage and exits 0', () => {
  const run = cli('serve', '--help');
  assert.equal(run.status, 0);
  assert.match(run.stdout, /--state-dir DIR/);
});

test('serve exits non-zero with a clear message when the system bus is unreachable', () => {
  const run = cli('serve', '--listen', '127.0.0.1:0', '--state-dir', join(directory, 'state'));
  assert.equal(run.status, 1);
  assert.match(run.stderr, /nonexistent\/bus|ENOENT/);
});
