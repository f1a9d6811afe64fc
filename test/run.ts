/**
 * `npm test`: boots one private systemd for the whole run, runs every test file against it with
 * node's test runner, then fails on any unit the tests left behind and powers the system off —
 * also when the tests fail or the run is interrupted. The whole suite's coverage is reported at the end
 * (test/coverage.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_DIR, bootPrivateSystemd } from '../src/embedded/private-systemd.js';
import { keepOwnScripts, prepareCoverageDir, reportCoverage } from './coverage.js';
import { SKIP_REPORT } from './harness/requirements.js';

function testFiles(directory: string): string[] {
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.test.ts'))
    .map((file) => relative(REPO_DIR, join(directory, file)))
    .sort();
}

/** Failures printed at the end: enough to read, few enough not to push the rest out of a log's tail. */
const FAILURES_SHOWN = 20;
const log = (line: string) => process.stderr.write(`[harness] ${line}\n`);
// npm test -- [node --test options] [files]: e.g. --test-name-pattern=burst test/integration/logs.test.ts
const requested = process.argv.slice(2);
const options = requested.filter((arg) => arg.startsWith('--'));
const named = requested.filter((arg) => !arg.startsWith('--'));
const files = named.length > 0 ? named : testFiles(join(REPO_DIR, 'test'));

// Coverage of the whole suite (test/coverage.ts): every node process of the run, outside and inside the
// private system, writes V8 coverage. Off for a partial run, unless TESSIA_COVERAGE=1; TESSIA_COVERAGE=0: off.
const coverage = process.env['TESSIA_COVERAGE'] ? process.env['TESSIA_COVERAGE'] === '1' : requested.length === 0;
const coverageDir = coverage ? prepareCoverageDir() : undefined;
const booted = await bootPrivateSystemd({ log, ...(coverageDir ? { coverageDir } : {}) });
// An object: the signal handler changes it between two awaits, which narrowing cannot see.
const run = { interrupted: false };
const reportDir = mkdtempSync(join(tmpdir(), 'tessia-test-report-'));
const skipReport = join(reportDir, 'skipped.txt');
const failureReport = join(reportDir, 'failed.txt');
// TAP (spec on a terminal: node 20's own choice) as before, and the failures again into a file for the end.
const ownReporter = options.some((option) => option.startsWith('--test-reporter'));
if (ownReporter) log('a --test-reporter of your own: no summary of the failures at the end');
const reporters = ownReporter
  ? []
  : [
      `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
      '--test-reporter-destination=stdout',
      `--test-reporter=${pathToFileURL(join(REPO_DIR, 'test/harness/failure-report.mjs')).href}`,
      `--test-reporter-destination=${failureReport}`,
    ];
const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...reporters, ...options, ...files], {
  cwd: REPO_DIR,
  stdio: 'inherit',
  env: {
    ...process.env,
    [SKIP_REPORT]: skipReport,
    TESSIA_TEST_SYSTEMD_PID: String(booted.systemd.pid),
    ...(coverageDir ? { NODE_V8_COVERAGE: coverageDir } : {}),
  },
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    run.interrupted = true;
    log(`${signal}: stopping the tests and the private systemd`);
    child.kill('SIGTERM');
  });
}
const code = await new Promise<number>((resolve) => child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))));

let leftovers = '';
if (!run.interrupted) {
  const units = await booted.systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-task-*', 'tessia-test-*');
  leftovers = units.stdout.trim();
  if (leftovers) log(`units the tests left behind:\n${leftovers}`);
}
await booted.shutdown();
let reported = 0;
if (coverageDir && !run.interrupted) {
  // After the shutdown: the runners still running wrote theirs when systemd stopped them.
  const { processes, kept, unloaded } = keepOwnScripts();
  log(`coverage: ${processes} processes wrote V8 coverage, ${kept} of them ran code of src/`);
  if (unloaded.length > 0) log(`coverage: no process loaded (so not in the figures): ${unloaded.join(' ')}`);
  reported = await reportCoverage();
}
// Skipped suites and failed tests again at the very end, where they cannot scroll past: each skip
// with what enables it, each failure with its file and error.
const skipped = existsSync(skipReport) ? [...new Set(readFileSync(skipReport, 'utf8').split('\n').filter(Boolean))] : [];
const failed = existsSync(failureReport) ? readFileSync(failureReport, 'utf8') : '';
rmSync(reportDir, { recursive: true, force: true });
if (skipped.length > 0) log(`SKIPPED on this machine (not run, not passed):\n${skipped.map((reason) => `  - ${reason}`).join('\n')}`);
if (failed) {
  const failures = failed.split(/^(?=✖ )/m);
  const shown = failures.slice(0, FAILURES_SHOWN).join('').trimEnd();
  const more = failures.length > FAILURES_SHOWN ? `\n… and ${failures.length - FAILURES_SHOWN} more (in the TAP output above)` : '';
  log(`FAILED${run.interrupted ? ' before the run was interrupted' : ''}: ${failures.length}\n${shown}${more}`);
}
process.exit(code !== 0 ? code : leftovers || reported !== 0 ? 1 : 0);
