/**
 * What the suites that install the .deb in the private systemd share: building this checkout's
 * package and an earlier release's, taking turns (each installs tessia-task-runner into the same
 * system), and the test system's own copy of the tasks' journald settings, set aside while a
 * package owns that file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { REPO_DIR, type PrivateSystemd } from '../../src/embedded/private-systemd.js';
import { TASK_LOG_NAMESPACE } from '../../src/package-layout.js';
import { offlineDebOfThisRun } from './offline-deb.js';

const execFileAsync = promisify(execFile);

export const VERSION = (JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version;
/** Where scripts/package-deb.sh puts the package. */
export const PACKAGE_OUT = join(REPO_DIR, 'packaging/out');
/** What dpkg-buildpackage checks (Build-Depends), what it runs, and what the package needs installed. */
export const DEB_SUITE_COMMANDS = ['dh', 'dpkg-buildpackage', 'dpkg-deb', 'fakeroot', 'lintian', 'python3', 'make', 'g++', 'pkcheck'];
export const DEB_SUITE_INSTALL = 'apt-get install debhelper dpkg-dev fakeroot lintian python3 make g++ polkitd';
/** Where the package installs the settings of the tasks' journald (the test system installs the same file there at boot). */
export const NAMESPACE_DROPIN = `/usr/lib/systemd/journald@${TASK_LOG_NAMESPACE}.conf.d/60-tessia-task-runner.conf`;

/** The binary packages in `directory` (not -dbgsym): tessia-task-runner_<version>[-<revision>]_<arch>.deb. */
export const debsIn = (directory: string) =>
  existsSync(directory) ? readdirSync(directory).filter((name) => /^tessia-task-runner_.*\.deb$/.test(name)) : [];

async function runScript(script: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('sh', [join(REPO_DIR, script), ...args], {
      cwd: REPO_DIR,
      timeout: 30 * 60_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(`${script} failed: ${String(error)}\n${`${failed.stdout ?? ''}${failed.stderr ?? ''}`.slice(-6000)}`, { cause: error });
  }
}

/**
 * Builds the package of this checkout with scripts/package-deb.sh, after removing every .deb an
 * earlier build left in its output, and returns the one file this build made (its name carries
 * this version, with a Debian revision or without).
 */
export async function buildFreshDeb(): Promise<string> {
  for (const name of debsIn(PACKAGE_OUT)) rmSync(join(PACKAGE_OUT, name));
  const began = Date.now();
  await runScript('scripts/package-deb.sh', []);
  const built = debsIn(PACKAGE_OUT);
  assert.equal(built.length, 1, `the build made exactly one package: ${built.join(', ')}`);
  const name = built[0] ?? '';
  assert.ok(name.startsWith(`tessia-task-runner_${VERSION}`), `${name} is the package of version ${VERSION}`);
  const deb = join(PACKAGE_OUT, name);
  assert.ok(statSync(deb).mtimeMs >= began - 1000, `${deb} was written by this build`);
  return deb;
}

/**
 * The package of this checkout: the one test/integration/package-build.test.ts built with no network
 * in this run, else one built now (the builds take minutes).
 */
export async function freshDeb(): Promise<string> {
  return offlineDebOfThisRun() ?? (await buildFreshDeb());
}

/** The package of an earlier commit, by scripts/build-release-deb.sh (built once, then kept by commit id). */
export async function buildReleaseDeb(commit: string): Promise<string> {
  const deb = (await runScript('scripts/build-release-deb.sh', [commit])).trim().split('\n').at(-1) ?? '';
  assert.ok(existsSync(deb), `build-release-deb.sh ${commit} printed no package: ${deb}`);
  return deb;
}

/**
 * Waits until no other suite installs the package in `systemd`, then holds it: test files may run
 * at once, and two of them installing, upgrading or purging tessia-task-runner in the same system
 * would undo each other. The lock is a directory in the private system's /run, so a run that died
 * holding it takes it down with its system. Returns the release.
 */
export async function holdPackageTurn(systemd: PrivateSystemd, holder: string, timeoutMs = 60 * 60_000): Promise<() => void> {
  const lock = `${systemd.root}/run/tessia-test/package-suite.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'holder'), `${holder} (pid ${process.pid})\n`);
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (Date.now() > deadline) {
      const holderNow = existsSync(join(lock, 'holder')) ? readFileSync(join(lock, 'holder'), 'utf8').trim() : 'unknown';
      throw new Error(`the package is still in use by ${holderNow} after ${timeoutMs} ms`);
    }
    await sleep(1000);
  }
}

/**
 * Sets the test system's copy of the tasks' journald settings aside (the package installs the same
 * path, and purging the package removes it) and stops that journald, so the package's first task
 * starts it with the package's file. Returns what puts the copy back, for the suites that follow.
 */
export async function setAsideBootNamespaceDropin(systemd: PrivateSystemd): Promise<() => Promise<void>> {
  const path = `${systemd.root}${NAMESPACE_DROPIN}`;
  const copy = readFileSync(path);
  rmSync(path);
  await systemd.run(['systemctl', 'stop', `systemd-journald@${TASK_LOG_NAMESPACE}.service`]);
  return async () => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, copy);
    await systemd.run(['systemctl', 'try-restart', `systemd-journald@${TASK_LOG_NAMESPACE}.service`]);
  };
}
