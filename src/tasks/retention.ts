/**
 * Retention: finished tasks are pruned by age and by count (config `retention`), with their events,
 * their idempotency keys and their working directories; active tasks never. A sweep runs at start-up
 * and then every `sweepMinutes`, in batches that each take one write, yielding to requests between
 * them. A task's directory goes before its record: a crash in between leaves a record without a
 * directory (pruned at the next sweep), never a directory nobody knows of.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { TaskStore } from './store.js';

/** Tasks pruned per write. */
const BATCH = 1000;
const DAY_MS = 86_400_000;
/** How long a deleted task's events are kept when retention has no age limit. */
const ORPHAN_EVENT_DAYS = 30;

export interface RetentionOptions {
  maxAgeDays: number | null;
  maxFinished: number | null;
  sweepMinutes: number;
}

export interface RetentionObserver {
  pruned(reason: 'age' | 'count', count: number): void;
  swept(seconds: number): void;
}

/** Removes a pruned task's working directory; resolves once it is gone (or was never there). */
export type DirectoryRemover = (taskId: string) => Promise<void>;

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | null = null;
  private closed = false;

  constructor(
    private readonly store: TaskStore,
    private readonly removeDirectory: DirectoryRemover,
    private readonly options: RetentionOptions,
    private readonly log: Logger,
    private readonly observer?: RetentionObserver,
  ) {}

  /** Sweeps now, then every sweepMinutes. */
  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.options.sweepMinutes * 60_000);
    this.timer.unref();
  }

  /** Prunes what retention says is past; resolves with how many tasks went. One sweep at a time. */
  sweep(now = new Date()): Promise<number> {
    this.sweeping ??= this.prune(now).finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.sweeping?.catch(() => undefined);
  }

  private async prune(now: Date): Promise<number> {
    const began = performance.now();
    const { maxAgeDays, maxFinished } = this.options;
    const cutoff = maxAgeDays === null ? null : new Date(now.getTime() - maxAgeDays * DAY_MS).toISOString();
    let total = 0;
    const counts = { age: 0, count: 0 };
    try {
      while (!this.closed) {
        const expired = this.store.expired(cutoff, maxFinished, BATCH);
        if (expired.length === 0) break;
        const kept = new Set<string>();
        for (const task of expired) {
          try {
            await this.removeDirectory(task.taskId);
          } catch (error) {
            // Its record stays: the next sweep tries again.
            kept.add(task.taskId);
            this.log.warn({ taskId: task.taskId, err: error }, "could not remove a pruned task's working directory");
          }
        }
        // A DELETE may have removed some while the directories went.
        const removable = expired.filter((task) => !kept.has(task.taskId) && this.store.find(task.taskId) !== undefined);
        this.store.removeAll(removable.map((task) => task.taskId));
        for (const task of removable) {
          if (cutoff !== null && task.finishedAt !== null && task.finishedAt < cutoff) counts.age += 1;
          else counts.count += 1;
        }
        total += removable.length;
        if (expired.length < BATCH || kept.size === expired.length) break;
        await nextTurn();
      }
      // Deleted tasks' events (their records went at DELETE): by age, the retention's or 30 days.
      const before = cutoff ?? new Date(now.getTime() - ORPHAN_EVENT_DAYS * DAY_MS).toISOString();
      this.store.pruneOrphanEvents(before);
    } catch (error) {
      this.log.error({ err: error }, 'retention sweep failed; trying again at the next one');
    }
    const seconds = (performance.now() - began) / 1000;
    this.observer?.swept(seconds);
    if (counts.age > 0) this.observer?.pruned('age', counts.age);
    if (counts.count > 0) this.observer?.pruned('count', counts.count);
    if (total > 0) {
      this.log.info(
        { pruned: total, byAge: counts.age, byCount: counts.count, seconds: Number(seconds.toFixed(3)) },
        `retention: pruned ${total} finished task${total === 1 ? '' : 's'}`,
      );
    }
    return total;
  }
}
