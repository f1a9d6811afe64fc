/**
 * A unit's resource counters, read from its cgroup: the files systemd itself reads for a unit's
 * CPUUsageNSec, MemoryCurrent, IO*Bytes and TasksCurrent, plus the kernel's peak memory, which
 * systemd 252 does not expose. Both hierarchies: unified (cgroup v2) and legacy (v1, a controller
 * each). Reads are of small kernel files, synchronous: no D-Bus call, no work for systemd.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskUsage } from '../tasks/model.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroup of a unit in a slice, as systemd names it: `a-b.slice` nests in `a.slice`. */
export function cgroupPathOf(slice: string, unit: string): string {
  const parts = slice.replace(/\.slice$/, '').split('-');
  const slices = parts.map((_part, index) => `${parts.slice(0, index + 1).join('-')}.slice`);
  return `/${[...slices, unit].join('/')}`;
}

type Counter = (path: string) => number | null;

function readNumber(file: string): number | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (text === 'max') return null;
    const value = Number(text);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/** `key value` lines (cpu.stat), or `device key=value …` lines (io.stat), summed by key. */
function sumKeys(file: string, keys: readonly string[]): Record<string, number> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const sums: Record<string, number> = Object.fromEntries(keys.map((key) => [key, 0]));
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    for (const [index, word] of words.entries()) {
      const [key, inline] = word.split('=');
      if (key === undefined || !keys.includes(key)) continue;
      // cpu.stat: "usage_usec 123"; io.stat: "rbytes=123"; blkio: "8:0 Read 123".
      const value = Number(inline ?? words[index + 1]);
      if (Number.isFinite(value)) sums[key] = (sums[key] ?? 0) + value;
    }
  }
  return sums;
}

/** cgroup v2's cpu.stat counts CPU time in every cgroup, with or without the cpu controller. */
function cpuStatNsec(directory: string): number | null {
  const usec = sumKeys(join(directory, 'cpu.stat'), ['usage_usec'])?.['usage_usec'];
  return usec === undefined ? null : usec * 1000;
}

interface Hierarchy {
  /** Whether the unit's cgroup exists (its processes are not all gone yet). */
  exists: (path: string) => boolean;
  cpuNsec: Counter;
  memoryBytes: Counter;
  memoryPeakBytes: Counter;
  io: (path: string) => { read: number; write: number } | null;
  tasks: Counter;
}

const unified = (root: string): Hierarchy => ({
  exists: (path) => existsSync(join(root, path, 'cgroup.procs')),
  cpuNsec: (path) => cpuStatNsec(join(root, path)),
  memoryBytes: (path) => readNumber(join(root, path, 'memory.current')),
  memoryPeakBytes: (path) => readNumber(join(root, path, 'memory.peak')),
  io: (path) => {
    const sums = sumKeys(join(root, path, 'io.stat'), ['rbytes', 'wbytes']);
    return sums && { read: sums['rbytes'] ?? 0, write: sums['wbytes'] ?? 0 };
  },
  tasks: (path) => readNumber(join(root, path, 'pids.current')),
});

const legacy = (root: string): Hierarchy => ({
  exists: (path) => existsSync(join(root, 'systemd', path, 'cgroup.procs')),
  // cpuacct where systemd mounts it with cpu; else the hybrid layout's unified tree counts it.
  cpuNsec: (path) => readNumber(join(root, 'cpuacct', path, 'cpuacct.usage')) ?? cpuStatNsec(join(root, 'unified', path)),
  memoryBytes: (path) => readNumber(join(root, 'memory', path, 'memory.usage_in_bytes')),
  memoryPeakBytes: (path) => readNumber(join(root, 'memory', path, 'memory.max_usage_in_bytes')),
  io: (path) => {
    const sums = sumKeys(join(root, 'blkio', path, 'blkio.throttle.io_service_bytes'), ['Read', 'Write']);
    return sums && { read: sums['Read'] ?? 0, write: sums['Write'] ?? 0 };
  },
  tasks: (path) => readNumber(join(root, 'pids', path, 'pids.current')),
});

/** The hierarchy mounted at each root, found once. */
const hierarchies = new Map<string, Hierarchy>();

/**
 * The usage of the unit whose cgroup is `path` (cgroupPathOf); null once its cgroup is gone.
 * `root`: where cgroupfs is mounted (tests give a tree of their own).
 */
export function readCgroupUsage(path: string, now = new Date(), root = CGROUP_ROOT): TaskUsage | null {
  let hierarchy = hierarchies.get(root);
  if (!hierarchy) {
    hierarchy = existsSync(join(root, 'cgroup.controllers')) ? unified(root) : legacy(root);
    hierarchies.set(root, hierarchy);
  }
  if (!hierarchy.exists(path)) return null;
  const io = hierarchy.io(path);
  return {
    cpuNsec: hierarchy.cpuNsec(path),
    memoryBytes: hierarchy.memoryBytes(path),
    memoryPeakBytes: hierarchy.memoryPeakBytes(path),
    ioReadBytes: io?.read ?? null,
    ioWriteBytes: io?.write ?? null,
    tasks: hierarchy.tasks(path),
    sampledAt: now.toISOString(),
  };
}
