/**
 * The .deb that test/integration/package-build.test.ts built with no network, handed to
 * test/integration/package.test.ts in the same test run, which then installs that package instead of
 * building the same source a second time (the builds take minutes). A package of an earlier run is
 * never taken: the record names the run (the private systemd's pid and start time) and the digest.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

const DIRECTORY = join(REPO_DIR, 'packaging/out/offline-build');
const RECORD = join(DIRECTORY, 'built.json');

interface Record {
  run: string;
  file: string;
  sha256: string;
}

export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** This test run: the private systemd that `npm test` booted (its pid, and its start time, as pids are reused). */
function thisRun(): string | undefined {
  const pid = process.env['TESSIA_TEST_SYSTEMD_PID'];
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return `${pid}@${startTime}`;
  } catch {
    return undefined;
  }
}

/** The Cockpit page's package that the build of `deb` (tessia-task-runner_<v>_<arch>.deb) made beside it. */
export function cockpitDebBeside(deb: string): string {
  const version = /^tessia-task-runner_([^_]+)_/.exec(basename(deb))?.[1] ?? '';
  return join(dirname(deb), `cockpit-tessia-task-runner_${version}_all.deb`);
}

/** Leaves `deb` (and the Cockpit page's package beside it) for the package suite of this run. */
export function handOverOfflineDeb(deb: string): void {
  const run = thisRun();
  rmSync(DIRECTORY, { recursive: true, force: true });
  if (!run) return;
  mkdirSync(DIRECTORY, { recursive: true });
  const file = join(DIRECTORY, basename(deb));
  copyFileSync(deb, file);
  // The Cockpit page's package, built with it, beside it (cockpitDebBeside).
  const cockpit = cockpitDebBeside(deb);
  if (existsSync(cockpit)) copyFileSync(cockpit, join(DIRECTORY, basename(cockpit)));
  writeFileSync(RECORD, JSON.stringify({ run, file, sha256: sha256Of(file) } satisfies Record));
}

/** The .deb built offline in this run, unchanged since, if there is one. */
export function offlineDebOfThisRun(): string | undefined {
  const run = thisRun();
  if (!run || !existsSync(RECORD)) return undefined;
  const record = JSON.parse(readFileSync(RECORD, 'utf8')) as Record;
  if (record.run !== run || !existsSync(record.file) || sha256Of(record.file) !== record.sha256) return undefined;
  return record.file;
}
