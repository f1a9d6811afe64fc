import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
it('runs out of time', { timeout: 20 }, () => new Promise((resolve) => setTimeout(resolve, 2000)));
it('throws a string', () => { throw 'not an Error'; });
`;

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

describe('the failure report test/run.ts prints at the end of a run', () => {
  it('names each failed test, its file and what it threw; leaves out passes and suites failed only through their tests', () => {
    const fixture = join(directory, 'fixture.test.mjs');
    const report = join(directory, 'failed.txt');
    writeFileSync(fixture, FIXTURE);
    const ran = spawnSync(
      process.execPath,
      [
        '--test',
        '--test-reporter=tap',
        '--test-reporter-destination=stdout',
        `--test-reporter=${REPORTER}`,
        `--test-reporter-destination=${report}`,
        fixture,
      ],
      // Without NODE_TEST_CONTEXT: with it, node --test would report to this test run instead.
      { encoding: 'utf8', env: withoutTestContext() },
    );
    assert.notEqual(ran.status, 0, 'the fixture fails');
    assert.match(ran.stdout, /^# pass 1$/m, 'TAP still goes to stdout');
    const text = readFileSync(report, 'utf8');
    const failures = text.split(/^(?=✖ )/m);
    assert.deepEqual(
      failures.map((failure) => failure.split('\n')[0]),
      ['✖ compares wrongly', '✖ runs out of time', '✖ throws a string'],
    );
    for (const failure of failures) assert.match(failure, new RegExp(`^  in ${fixture.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(failures[0] ?? '', /AssertionError.*: one and one$/m);
    assert.match(failures[0] ?? '', /fixture\.test\.mjs:6:/, 'where it was thrown');
    assert.doesNotMatch(text, /node:internal/, "node's own frames left out");
    assert.match(failures[1] ?? '', /timed out after 20ms/);
    assert.match(failures[2] ?? '', /not an Error/);
  });
});
