/**
 * What each running task uses, read from its cgroup now and then, so that its record keeps what it
 * used once it has ended: by then its cgroup is gone, and systemd 252 keeps only the CPU time.
 * One timer for all tasks; each read is a few small kernel files, no D-Bus call.
 */
import { cgroupPathOf, readCgroupUsage } from '../systemd/cgroup-usage.js';
import type { TaskUsage } from './model.js';

const larger = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

export class UsageSampler {
  /** The last usage read of each followed unit (undefined: not read yet, or its cgroup not there). */
  private readonly samples = new Map<string, TaskUsage | undefined>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly slice: string,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.sweep(), intervalMs).unref();
  }

  /** Reads the unit's usage from now on (its first read now: a short task has one at least). */
  follow(unit: string): void {
    if (!this.samples.has(unit)) this.samples.set(unit, undefined);
    this.read(unit);
  }

  forget(unit: string): void {
    this.samples.delete(unit);
  }

  /** The usage now: read from the cgroup, the peak being the largest seen. */
  read(unit: string): TaskUsage | null {
    const now = readCgroupUsage(cgroupPathOf(this.slice, unit));
    const before = this.samples.get(unit);
    if (now === null) return before ?? null;
    const merged = before ? merge(before, now) : { ...now, memoryPeakBytes: larger(now.memoryPeakBytes, now.memoryBytes) };
    if (this.samples.has(unit)) this.samples.set(unit, merged);
    return merged;
  }

  /**
   * The task has ended: what it used, for its record. `cpuNsec`: systemd's final CPU time, when it
   * kept one (exact; the last read may be up to a sampling interval old). The figures are kept until
   * forget() (the unit's collection): a record the store could not take is written again with them.
   */
  final(unit: string, cpuNsec: number | null): TaskUsage | null {
    const last = this.read(unit);
    if (last === null && cpuNsec === null) return null;
    const base: TaskUsage = last ?? {
      cpuNsec: null,
      memoryBytes: null,
      memoryPeakBytes: null,
      ioReadBytes: null,
      ioWriteBytes: null,
      tasks: null,
      sampledAt: new Date().toISOString(),
    };
    return { ...base, cpuNsec: larger(base.cpuNsec, cpuNsec), memoryBytes: 0, tasks: 0 };
  }

  close(): void {
    clearInterval(this.timer);
    this.samples.clear();
  }

  private sweep(): void {
    for (const unit of this.samples.keys()) this.read(unit);
  }
}

function merge(before: TaskUsage, now: TaskUsage): TaskUsage {
  return {
    ...now,
    cpuNsec: larger(before.cpuNsec, now.cpuNsec),
    memoryPeakBytes: larger(larger(before.memoryPeakBytes, now.memoryPeakBytes), now.memoryBytes),
    ioReadBytes: larger(before.ioReadBytes, now.ioReadBytes),
    ioWriteBytes: larger(before.ioWriteBytes, now.ioWriteBytes),
  };
}
