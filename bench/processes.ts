/**
 * CPU time and memory of processes inside the private system, read from its /proc (reachable from
 * outside through /proc/PID/root), and of the bench's own children on the host (cpuDuring's
 * `hostProcesses`), to say where the time of a benchmark phase went.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';

const CLOCK_TICKS = 100;

/** user + system CPU seconds of a process (PID as seen inside the private system). */
export function cpuSeconds(systemd: PrivateSystemd, pid: number): number {
  return cpuSecondsIn(`${systemd.root}/proc`, pid);
}

/** user + system CPU seconds of process `pid` of the /proc at `proc`. */
function cpuSecondsIn(proc: string, pid: number): number {
  const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident memory now and at its peak, in bytes. */
export function memory(systemd: PrivateSystemd, pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`${systemd.root}/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

export async function mainPid(systemd: PrivateSystemd, unit: string): Promise<number> {
  const pid = Number((await systemd.show(unit, ['MainPID']))['MainPID']);
  if (!(pid > 0)) throw new Error(`${unit} has no main process`);
  return pid;
}

/** The processes whose CPU a start costs: systemd (PID 1), the bus, journald and the runner. */
export async function watchedProcesses(systemd: PrivateSystemd, runnerUnit: string, starterUnit?: string): Promise<Record<string, number>> {
  return {
    systemd: 1,
    'dbus-daemon': await mainPid(systemd, 'dbus.service'),
    journald: await mainPid(systemd, 'systemd-journald.service'),
    runner: await mainPid(systemd, runnerUnit),
    ...(starterUnit === undefined ? {} : { starter: await mainPid(systemd, starterUnit) }),
  };
}

/** Busy and idle CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpu(): { busy: number; idle: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: (total - idle) / CLOCK_TICKS, idle: idle / CLOCK_TICKS };
}

/**
 * CPU seconds each watched process (and this bench process) used while `phase` ran; "other" is
 * the rest of the machine's busy time: the tasks' processes, including the sandbox set-up systemd
 * does in each new process before exec. `processes` are PIDs inside the private system,
 * `hostProcesses` this bench's own children (the HTTP front of bench/http-front.ts).
 */
export async function cpuDuring<T>(
  systemd: PrivateSystemd,
  processes: Record<string, number>,
  phase: () => Promise<T>,
  hostProcesses: Record<string, number> = {},
): Promise<{ result: T; cpuSeconds: Record<string, number> }> {
  const inside = `${systemd.root}/proc`;
  const watched = [
    ...Object.entries(processes).map(([name, pid]) => [name, () => cpuSecondsIn(inside, pid)] as const),
    ...Object.entries(hostProcesses).map(([name, pid]) => [name, () => cpuSecondsIn('/proc', pid)] as const),
  ];
  const before = Object.fromEntries(watched.map(([name, read]) => [name, read()]));
  const benchBefore = process.cpuUsage();
  const machineBefore = machineCpu();
  const result = await phase();
  const machineAfter = machineCpu();
  const bench = process.cpuUsage(benchBefore);
  const used: Record<string, number> = {};
  for (const [name, read] of watched) used[name] = read() - (before[name] ?? 0);
  used['bench (clients)'] = (bench.user + bench.system) / 1e6;
  const busy = machineAfter.busy - machineBefore.busy;
  used['other'] = Math.max(0, busy - Object.values(used).reduce((sum, value) => sum + value, 0));
  used['idle'] = machineAfter.idle - machineBefore.idle;
  return { result, cpuSeconds: used };
}

/**
 * What a unit's processes hold together: how many processes and threads (what TasksMax counts), the
 * sum of their proportional set sizes (shared pages — the journal files every journalctl maps —
 * counted once across them), and the cgroup's own MemoryCurrent (page cache included, on cgroup v1).
 */
export async function unitFootprint(
  systemd: PrivateSystemd,
  unit: string,
): Promise<{ processes: number; tasks: number; pssBytes: number; memoryCurrentBytes: number }> {
  const shown = await systemd.show(unit, ['ControlGroup', 'MemoryCurrent', 'TasksCurrent']);
  const group = shown['ControlGroup'] ?? '';
  const procs = ['unified', 'systemd']
    .map((hierarchy) => `${systemd.root}/sys/fs/cgroup/${hierarchy}${group}/cgroup.procs`)
    .find((path) => existsSync(path));
  const pids = procs === undefined ? [] : readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number);
  let pssBytes = 0;
  let threads = 0;
  // cgroup.procs lists PIDs as its reader sees them: this (the host's) PID namespace, so the host's /proc.
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pssBytes += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      threads += Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  const tasksCurrent = Number(shown['TasksCurrent']);
  return {
    processes: pids.length,
    tasks: Number.isFinite(tasksCurrent) ? tasksCurrent : threads,
    pssBytes,
    memoryCurrentBytes: Number(shown['MemoryCurrent']),
  };
}
