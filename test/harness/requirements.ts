/**
 * Whether a suite that needs tools beyond the test run's own may run on this machine, decided in
 * one place. Such a suite is never silently passed: without its tools it is skipped with a message
 * that says what to install, and with TESSIA_REQUIRE_ALL_SUITES=1 (a CI that installed everything)
 * a missing tool fails the run instead of skipping.
 *
 *   describe('the Debian package', { skip: skipUnlessInstalled(['dh', 'dpkg-buildpackage'], 'the … suite needs …') }, …)
 */
import { spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

/** Set to 1 and no suite may be skipped for a missing tool. */
export const REQUIRE_ALL_SUITES = 'TESSIA_REQUIRE_ALL_SUITES';
/** A file (set by test/run.ts) where each skip is written, for the summary at the end of the run. */
export const SKIP_REPORT = 'TESSIA_SKIP_REPORT';

/** The commands of `commands` that are not executables on $PATH. */
export function missingCommands(commands: readonly string[], path = process.env['PATH'] ?? ''): string[] {
  const directories = path.split(delimiter).filter((directory) => directory !== '');
  return commands.filter((command) => !directories.some((directory) => isExecutable(join(directory, command))));
}

/**
 * `false` when every command is installed (the suite runs), else `reason` for `describe`'s `skip`;
 * throws an Error carrying `reason` instead when TESSIA_REQUIRE_ALL_SUITES=1.
 */
export function skipUnlessInstalled(commands: readonly string[], reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = missingCommands(commands, env['PATH'] ?? '');
  if (missing.length === 0) return false;
  return skipOrFail(reason, `not found on PATH: ${missing.join(', ')}`, env);
}

/** Like `skipUnlessInstalled`, for programs found by their path (those not on $PATH, as /usr/lib/cockpit/cockpit-ws). */
export function skipUnlessFiles(files: readonly string[], reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = files.filter((file) => !existsSync(file));
  if (missing.length === 0) return false;
  return skipOrFail(reason, `not found: ${missing.join(', ')}`, env);
}

/** What builds the native journal binding on a machine where `npm ci` could not (no C++ compiler). */
export const NATIVE_JOURNAL_ENABLE = 'apt-get install python3 make g++ && npm rebuild unix-dgram';

/** Whether unix-dgram's compiled addon loads: the runner and the SDK then write native journal entries. */
export function nativeJournalBuilt(): boolean {
  try {
    createRequire(import.meta.url)('unix-dgram');
    return true;
  } catch {
    return false;
  }
}

/** Like `skipUnlessInstalled`, for a test of what only the native journal transport does. */
export function skipUnlessNativeJournal(what: string, env: NodeJS.ProcessEnv = process.env): string | false {
  if (nativeJournalBuilt()) return false;
  return skipOrFail(
    `${what} need the native journal binding (unix-dgram): ${NATIVE_JOURNAL_ENABLE}`,
    'the unix-dgram addon is not built',
    env,
  );
}

/** The interpreter the tessia host's tests run: Debian's, where python3-systemd and python3-jsonschema live. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** The modules of `modules` that `python` cannot import (all of them when `python` does not run). */
export function missingPythonModules(modules: readonly string[], python = SYSTEM_PYTHON): string[] {
  const probe = [
    'import importlib, sys',
    'for name in sys.argv[1:]:',
    '    try: importlib.import_module(name)',
    '    except Exception: print(name)',
  ].join('\n');
  const ran = spawnSync(python, ['-I', '-c', probe, ...modules], { encoding: 'utf8', timeout: 30_000 });
  if (ran.status !== 0) return [...modules];
  return ran.stdout.split('\n').filter((name) => name !== '');
}

/**
 * Like `skipUnlessInstalled`, for a suite that needs Python modules of /usr/bin/python3 (Debian's
 * python3-systemd is the module `systemd`, python3-jsonschema `jsonschema`).
 */
export function skipUnlessPython(modules: readonly string[], reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = missingPythonModules(modules);
  if (missing.length === 0) return false;
  return skipOrFail(reason, `${SYSTEM_PYTHON} cannot import: ${missing.join(', ')}`, env);
}

/** unshare's options for a mount namespace of one's own: a user namespace too when not root. */
export function mountNamespaceOptions(): string[] {
  return process.getuid?.() === 0 ? ['--mount'] : ['--user', '--map-root-user', '--mount'];
}

/** Like `skipUnlessInstalled`, for a test that runs a process in a mount namespace of its own (unshare). */
export function skipUnlessMountNamespace(reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const ran = spawnSync('unshare', [...mountNamespaceOptions(), 'true'], { encoding: 'utf8', timeout: 30_000 });
  if (ran.status === 0) return false;
  return skipOrFail(reason, `unshare ${mountNamespaceOptions().join(' ')} fails: ${ran.error?.message ?? ran.stderr.trim()}`, env);
}

/** Where Node.js's headers for addons are: beside its binary, as its packages and tarballs install them. */
export const NODE_HEADERS = join(dirname(dirname(process.execPath)), 'include', 'node');

/** Like `skipUnlessInstalled`, for a test that compiles a Node.js addon (g++ and Node.js's headers). */
export function skipUnlessAddonCompiler(reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = [...missingCommands(['g++'], env['PATH'] ?? ''), ...(existsSync(join(NODE_HEADERS, 'node.h')) ? [] : [NODE_HEADERS])];
  if (missing.length === 0) return false;
  return skipOrFail(reason, `missing: ${missing.join(', ')}`, env);
}

/**
 * What `commit` of the repository in `repo` lacks to be built as a Debian package here: nothing
 * (undefined), the commit itself (a shallow clone), or the Build-Depends of its debian/control
 * that are not installed (as dpkg-checkbuilddeps says).
 */
export function unmetBuildDepends(repo: string, commit: string): string | undefined {
  const control = spawnSync('git', ['-C', repo, 'show', `${commit}:packaging/deb/debian/control`], { encoding: 'utf8' });
  if (control.status !== 0) return `commit ${commit} is not in this clone (git fetch --unshallow): ${control.stderr.trim()}`;
  const directory = mkdtempSync(join(tmpdir(), 'tessia-build-depends-'));
  try {
    mkdirSync(join(directory, 'debian'));
    writeFileSync(join(directory, 'debian/control'), control.stdout);
    const checked = spawnSync('dpkg-checkbuilddeps', [], { cwd: directory, encoding: 'utf8' });
    if (checked.error) return `dpkg-checkbuilddeps: ${checked.error.message}`;
    return checked.status === 0 ? undefined : checked.stderr.trim();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Like `skipUnlessInstalled`, for a suite that builds the package of an earlier commit (its own Build-Depends). */
export function skipUnlessBuildDepends(repo: string, commit: string, reason: string, env: NodeJS.ProcessEnv = process.env): string | false {
  const unmet = unmetBuildDepends(repo, commit);
  if (unmet === undefined) return false;
  // A clone without the history is not a machine without a tool: skipped loudly even where every
  // suite is required (.ci/run fetches the history of a shallow clone first).
  if (unmet.startsWith(`commit ${commit} is not in this clone`)) return `${reason} — ${unmet}`;
  return skipOrFail(reason, unmet, env);
}

function skipOrFail(reason: string, missing: string, env: NodeJS.ProcessEnv): string {
  if (env[REQUIRE_ALL_SUITES] === '1') {
    throw new Error(`${reason} — ${missing}; ${REQUIRE_ALL_SUITES}=1 forbids skipping the suite`);
  }
  const report = env[SKIP_REPORT];
  if (report) appendFileSync(report, `${reason}\n`);
  return reason;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
