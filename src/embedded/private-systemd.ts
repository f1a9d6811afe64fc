/**
 * A private systemd for the tests: PID 1 of its own pid+mount namespace, with its own D-Bus and
 * journald, reached from outside through /proc/PID/root and `nsenter`. One per test run.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TASK_LOG_NAMESPACE } from '../package-layout.js';

const execFileAsync = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = resolve(HERE, '../..');
/** Where the repository appears inside the private system. */
export const APP_DIR_INSIDE = '/run/tessia-app';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** What boot-inside.sh sets in the private systemd's environment (`container=`). */
const CONTAINER = 'container=tessia-test';

/**
 * Whether `pid` is a private systemd: root's in this user namespace (no other user can make such a
 * process), PID 1 of a PID namespace of its own, with boot-inside.sh's environment.
 */
function isPrivateSystemd(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const ids = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return (
      [...ids('Uid'), ...ids('Gid')].every((id) => id === '0') &&
      ids('NSpid').at(-1) === '1' &&
      readlinkSync(`/proc/${pid}/ns/user`) === readlinkSync('/proc/self/ns/user') &&
      readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(CONTAINER)
    );
  } catch {
    return false;
  }
}

export class PrivateSystemd {
  constructor(
    /** The host PID of the private systemd (PID 1 inside). */
    readonly pid: number,
  ) {}

  /** The private system's root as seen from outside. */
  get root(): string {
    return `/proc/${this.pid}/root`;
  }

  get busAddress(): string {
    return `unix:path=${this.root}/run/dbus/system_bus_socket`;
  }

  /** Runs a command inside the private system; never throws on a non-zero exit. */
  async run(argv: string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
    try {
      const { stdout, stderr } = await execFileAsync('nsenter', ['-t', String(this.pid), '-m', '-p', '--', ...argv], {
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 256 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: number | string; stdout?: string; stderr?: string };
      return {
        code: typeof failed.code === 'number' ? failed.code : -1,
        stdout: failed.stdout ?? '',
        stderr: failed.stderr ?? String(error),
      };
    }
  }

  /** Runs a command inside as `user`, with the user's groups; never throws on a non-zero exit. */
  async runAs(user: string, argv: string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
    return this.run(['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', ...argv], options);
  }

  async systemctl(...args: string[]): Promise<RunResult> {
    return this.run(['systemctl', '--no-pager', ...args]);
  }

  /** `systemctl show` as a map. */
  async show(unit: string, properties: string[]): Promise<Record<string, string>> {
    const result = await this.systemctl('show', unit, `--property=${properties.join(',')}`);
    const values: Record<string, string> = {};
    for (const line of result.stdout.split('\n')) {
      const at = line.indexOf('=');
      if (at > 0) values[line.slice(0, at)] = line.slice(at + 1);
    }
    return values;
  }

  /** The test process's view of this system, from the environment the test runner sets. */
  static fromEnvironment(): PrivateSystemd {
    const pid = Number(process.env['TESSIA_TEST_SYSTEMD_PID']);
    if (!Number.isInteger(pid) || pid <= 1) {
      throw new Error('TESSIA_TEST_SYSTEMD_PID is not set: run the tests with `npm test`, which boots the private systemd');
    }
    // A stale PID (reused by a process of the host) would have the tests' commands act on the host.
    if (!isPrivateSystemd(pid)) {
      throw new Error(
        `TESSIA_TEST_SYSTEMD_PID=${pid} is not a private systemd booted by boot-inside.sh: boot one with \`npm test\` or \`npm run systemd\``,
      );
    }
    return new PrivateSystemd(pid);
  }
}

export interface BootedSystemd {
  systemd: PrivateSystemd;
  /** Stops every unit, lets systemd exit, and kills the namespace if it does not within the limit. */
  shutdown(): Promise<void>;
}

/** `coverageDir`: a directory (mode 1777) where the runners and tasks of this system write V8 coverage (/run/tessia-coverage inside). */
export async function bootPrivateSystemd(
  options: { timeoutMs?: number; log?: (line: string) => void; coverageDir?: string } = {},
): Promise<BootedSystemd> {
  const log = options.log ?? (() => {});
  if (process.getuid?.() !== 0) throw new Error('the private systemd needs root (unshare --pid --mount)');
  if (!existsSync('/lib/systemd/systemd')) throw new Error('systemd is not installed (/lib/systemd/systemd)');
  const unshare = spawn(
    'unshare',
    [
      '--pid',
      '--mount',
      '--fork',
      '--mount-proc',
      '--kill-child',
      '--',
      'sh',
      join(HERE, 'boot-inside.sh'),
      REPO_DIR,
      join(REPO_DIR, 'units', `journald@${TASK_LOG_NAMESPACE}.conf.d`),
      ...(options.coverageDir ? [options.coverageDir] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  unshare.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  unshare.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => unshare.once('exit', () => done()));

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let pid = 0;
  const fail = async (why: string): Promise<never> => {
    await kill(unshare, pid, exited);
    throw new Error(`the private systemd did not boot: ${why}\n--- its output ---\n${output.slice(-4000)}`);
  };
  while (pid === 0) {
    if (unshare.exitCode !== null) return fail(`unshare exited with ${unshare.exitCode}`);
    if (Date.now() > deadline) return fail('no systemd process appeared');
    pid = childOf(unshare.pid ?? 0);
    if (pid === 0) await sleep(20);
  }
  const systemd = new PrivateSystemd(pid);
  log(`private systemd booting as host PID ${pid}`);
  for (;;) {
    const state = (await systemd.run(['systemctl', 'is-system-running'], { timeoutMs: 5000 })).stdout.trim();
    if (state === 'running') break;
    if (state === 'degraded') {
      const failed = await systemd.systemctl('--failed', '--plain', '--no-legend');
      return fail(`it is degraded; failed units:\n${failed.stdout}`);
    }
    if (unshare.exitCode !== null) return fail(`systemd exited (${unshare.exitCode})`);
    if (Date.now() > deadline) return fail(`still "${state || 'unreachable'}" after the time limit`);
    await sleep(100);
  }
  log('private systemd is running');
  let down: Promise<void> | undefined;
  return {
    systemd,
    shutdown: () => (down ??= shutdown(systemd, unshare, exited, log)),
  };
}

async function shutdown(systemd: PrivateSystemd, unshare: ChildProcess, exited: Promise<void>, log: (line: string) => void) {
  if (!running(unshare)) return;
  // In a container (container= is set) `systemctl exit` stops every unit, then PID 1 becomes
  // systemd-shutdown, whose final kill-and-unmount loop takes long and has nothing left to do in a
  // namespace that vanishes with its init: end that part with SIGKILL.
  await systemd.run(['systemctl', 'exit', '--no-block'], { timeoutMs: 5000 });
  const deadline = Date.now() + 30_000;
  while (running(unshare) && Date.now() < deadline) {
    if (commandOf(systemd.pid).startsWith('systemd-shutdow')) break;
    await sleep(50);
  }
  if (running(unshare)) await kill(unshare, systemd.pid, exited);
  log('private systemd is off');
}

/** SIGKILL to PID 1 of the namespace ends every process in it; only PIDs we started. */
async function kill(unshare: ChildProcess, pid: number, exited: Promise<void>): Promise<void> {
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (running(unshare)) unshare.kill('SIGKILL');
  await Promise.race([exited, sleep(5000)]);
}

/** A function, not an inline test: the state changes across the awaits between two checks. */
function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function childOf(parentPid: number): number {
  try {
    const children = readFileSync(`/proc/${parentPid}/task/${parentPid}/children`, 'utf8').trim().split(/\s+/);
    return Number(children[0]) || 0;
  } catch {
    return 0;
  }
}
