import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

const REPORTER = join(REPO_DIR, 'test/harness/failure-report.mjs');
const directory = mkdtempSync(join(tmpdir(), 'tessia-failure-report-'));
after(() => rmSync(directory, { recursive: true, force: true }));

const FIXTURE = `
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
describe('a suite', () => {
  it('passes quietly', () => {});
  it('compares wrongly', () => assert.equal(1 + 1, 3, 'one and one'));
});
it('runs out of time', { timeout: 20 }, () => new Promise((resolve) => setTimeout(resolve, 200)));
it('throws a string', () => { throw 'not an Error'; });
it.todo('is not done yet', () => { throw new Error('todo'); });
`;

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

/** Runs node --test on `source` as a test file with TAP to stdout and the report to a file. */
function report(name: string, source: string): { status: number | null; stdout: string; fixture: string; failures: string[] } {
  const fixture = join(directory, name);
  const reportFile = join(directory, `${name}.failed.txt`);
  writeFileSync(fixture, source);
  const ran = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-reporter=tap',
      '--test-reporter-destination=stdout',
      `--test-reporter=${REPORTER}`,
      `--test-reporter-destination=${reportFile}`,
      fixture,
    ],
    // Without NODE_TEST_CONTEXT: with it, node --test would report to this test run instead. Bounded:
    // spawnSync holds the event loop, so node:test's own timeout could not end a reporter that hangs.
    { encoding: 'utf8', env: withoutTestContext(), timeout: 30_000, killSignal: 'SIGKILL' },
  );
  assert.equal(ran.error, undefined, ran.stderr);
  assert.ok(existsSync(reportFile), `no report: ${ran.stderr}`);
  const failures = readFileSync(reportFile, 'utf8')
    .split(/^(?=✖ )/m)
    .filter(Boolean);
  return { status: ran.status, stdout: ran.stdout, fixture, failures };
}

describe('the failure report test/run.ts prints at the end of a run', () => {
  it('names each failed test, its file and what it threw; leaves out passes, todos and suites failed only through their tests', () => {
    const { status, stdout, fixture, failures } = report('tests.test.mjs', FIXTURE);
    assert.notEqual(status, 0, 'the fixture fails');
    assert.match(stdout, /^# pass 1$/m, 'TAP still goes to stdout');
    assert.deepEqual(
      failures.map((failure) => failure.split('\n').slice(0, 2)),
      ['compares wrongly', 'runs out of time', 'throws a string'].map((name) => [`✖ ${name}`, `  in ${fixture}`]),
    );
    assert.match(failures[0] ?? '', /AssertionError.*: one and one$/m);
    assert.match(failures[0] ?? '', /tests\.test\.mjs:6:/, 'where it was thrown');
    assert.doesNotMatch(failures.join(''), /node:internal/, "node's own frames left out");
    assert.match(failures[1] ?? '', /timed out after 20ms/);
    assert.match(failures[2] ?? '', /not an Error/);
  });

  it("says why a file failed as a whole: its process's exit and its last lines on stderr", () => {
    const { status, failures } = report('broken.test.mjs', "import './no-such-module.mjs';\n");
    assert.notEqual(status, 0);
    assert.equal(failures.length, 1);
    assert.match(failures[0] ?? '', /ended with exit code 1; its last lines on stderr:/);
    assert.match(failures[0] ?? '', /ERR_MODULE_NOT_FOUND.*no-such-module\.mjs/);
  });
});
