/**
 * What each running task uses, read from its cgroup now and then, so that its record keeps what it
 * used once it has ended: by then its cgroup is gone, and systemd 252 keeps only the CPU time.
 * One timer for all tasks; each read is a few small kernel files, no D-Bus call.
 */
import { cgroupPathOf, readCgroupUsage } from '../systemd/cgroup-usage.js';
import type { TaskUsage } from './model.js';

const larger = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/**
 * Units read in one turn of the event loop during a sweep: a read is 5–7 small files (~50 µs), so a
 * sweep of 1000 running tasks done at once held every request ~50 ms; in turns of 25, ~1.3 ms.
 */
export const SWEEP_TURN_UNITS = 25;

export class UsageSampler {
  /** The last usage read of each followed unit (undefined: not read yet, or its cgroup not there). */
  private readonly samples = new Map<string, TaskUsage | undefined>();
  private readonly timer: NodeJS.Timeout;
  /** The sweep under way, if any: a slow one is not overlapped by the next. */
  private sweeping: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly slice: string,
    intervalMs: number,
    /** Where the cgroup file system is (tests: a tree of their own). */
    private readonly cgroupRoot?: string,
  ) {
    this.timer = setInterval(() => void this.sweep(), intervalMs).unref();
  }

  /**
   * Reads the unit's usage from now on, its first read now (a short task has one at least), or
   * `soon`: once the work under way is done (a start's answer does not wait for five files).
   */
  follow(unit: string, when: 'now' | 'soon' = 'now'): void {
    if (!this.samples.has(unit)) this.samples.set(unit, undefined);
    if (when === 'now') {
      this.read(unit);
      return;
    }
    setImmediate(() => {
      // Not forgotten (collected) meanwhile, and not read by anything else yet.
      if (!this.closed && this.samples.has(unit) && this.samples.get(unit) === undefined) this.read(unit);
    });
  }

  forget(unit: string): void {
    this.samples.delete(unit);
  }

  /** The usage now: read from the cgroup, the peak being the largest seen. */
  read(unit: string): TaskUsage | null {
    const now = readCgroupUsage(cgroupPathOf(this.slice, unit), new Date(), this.cgroupRoot);
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
    this.closed = true;
    clearInterval(this.timer);
    this.samples.clear();
  }

  /** Reads every followed unit, SWEEP_TURN_UNITS a turn of the event loop; resolves when done. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      const units = [...this.samples.keys()];
      for (let from = 0; from < units.length && !this.closed; from += SWEEP_TURN_UNITS) {
        if (from > 0) await new Promise((resolve) => setImmediate(resolve));
        for (const unit of units.slice(from, from + SWEEP_TURN_UNITS)) {
          // Forgotten meanwhile (collected): not read again.
          if (this.samples.has(unit)) this.read(unit);
        }
      }
    })().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
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
