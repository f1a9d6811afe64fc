/**
 * The order in which a follow stream passes a task's entries on. `journalctl --follow` over two
 * journals merged by time (the tasks' namespace and the default one, where PID 1 writes its lines
 * about the unit) never goes back, and can pass over an entry that shows up in its file after a
 * later-stamped entry of the other journal was shown (docs/logs.md, "When a followed stream ends").
 * So systemd's lines are held back until a task line after them is read; then what lies between is
 * read again, in the journal's order. The drain at the stream's end starts before any line still held.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { fieldText, type JournalEntry } from '../journal/entry.js';
import type { JournalQuery } from '../journal/query.js';
import { readJournal, type ReaderOptions } from '../journal/reader.js';

/**
 * A reading again at most a second after the last one ended: a task that makes PID 1 log about its
 * unit cannot make one a line. (Within it, lines are passed on as read.)
 */
const READ_AGAIN_INTERVAL_MS = 1000;
/** A reading again spans the held lines and the few the follower passed over: past this many it is given up. */
const READ_AGAIN_MAX_ENTRIES = 100;
/** systemd lines held at most: past this many in a row they are passed on as read. */
const MAX_HELD = 100;

/** PID 1's line about a task's unit (in the default journal), not the task's own. */
export function isSystemdLine(entry: JournalEntry): boolean {
  return entry.fields['_PID'] === '1' && entry.fields['TESSIA_TASK_ID'] === undefined;
}

export class FollowOrder {
  /** The last entry passed on: the last plain read, and a reading again, start after it. */
  private lastCursor: string | undefined;
  /** systemd's lines read since, not passed on yet. */
  private held: JournalEntry[] = [];
  private lastReadAgainAt = -Infinity;

  constructor(
    /** The follower's query. */
    private readonly query: JournalQuery,
    private readonly readerOptions: (signal: AbortSignal) => ReaderOptions,
    /** Aborted when the stream ends: no reading again after that. */
    private readonly signal: AbortSignal,
    private readonly log: Logger,
  ) {
    this.lastCursor = query.afterCursor;
  }

  /** What of the follower's batch can be passed on now: as read, or, where it was read again, in the journal's order. */
  async take(batch: readonly JournalEntry[]): Promise<JournalEntry[]> {
    const passed: JournalEntry[] = [];
    for (const entry of batch) {
      if (isSystemdLine(entry) && this.held.length < MAX_HELD) {
        this.held.push(entry);
        continue;
      }
      passed.push(...(this.held.length === 0 || isSystemdLine(entry) ? [...this.held, entry] : await this.readAgain(entry)));
      this.held = [];
      this.lastCursor = entry.cursor;
    }
    return passed;
  }

  /** The drain's query, once the task has finished: from after the last entry passed on. */
  drainQuery(): JournalQuery {
    return this.queryFromLastPassed();
  }

  /**
   * A task line read after held systemd lines: its journal has caught up to it. The entries from the
   * last one passed on up to it, read again in the journal's order (with any the follower passed
   * over); as read, if that read does not reach it, misses a held line (rotated away meanwhile), or
   * would come too soon after the last.
   */
  private async readAgain(upTo: JournalEntry): Promise<JournalEntry[]> {
    const asRead = [...this.held, upTo];
    if (this.signal.aborted || performance.now() - this.lastReadAgainAt < READ_AGAIN_INTERVAL_MS) return asRead;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    this.signal.addEventListener('abort', onAbort, { once: true });
    const read: JournalEntry[] = [];
    try {
      for await (const batch of readJournal(this.queryFromLastPassed(), this.readerOptions(stop.signal))) {
        for (const entry of batch) {
          read.push(entry);
          if (entry.cursor === upTo.cursor) return this.holdsEveryHeld(read) ? read : asRead;
          if (read.length >= READ_AGAIN_MAX_ENTRIES || isPast(entry, upTo)) return asRead;
        }
      }
    } catch (error) {
      if (!stop.signal.aborted) this.log.warn({ err: error }, 'reading the journal again failed: entries passed on as read');
    } finally {
      stop.abort();
      this.signal.removeEventListener('abort', onAbort);
      this.lastReadAgainAt = performance.now();
    }
    return asRead;
  }

  private queryFromLastPassed(): JournalQuery {
    const { matches, namespace, maxPriority, since, tail } = this.query;
    const again: JournalQuery = { matches };
    if (namespace !== undefined) again.namespace = namespace;
    if (maxPriority !== undefined) again.maxPriority = maxPriority;
    const firstHeld = this.held[0];
    if (this.lastCursor !== undefined) again.afterCursor = this.lastCursor;
    // Nothing passed on yet: the follower's start, but tail='s last lines have moved on since.
    else if (tail !== undefined && firstHeld !== undefined) again.atCursor = firstHeld.cursor;
    else {
      if (since !== undefined) again.since = since;
      if (tail !== undefined) again.tail = tail;
    }
    return again;
  }

  private holdsEveryHeld(read: readonly JournalEntry[]): boolean {
    const cursors = new Set(read.map((entry) => entry.cursor));
    return this.held.every((entry) => cursors.has(entry.cursor));
  }
}

/** Stamped after `upTo` on the same boot's monotonic clock, by which the merge orders two journals' entries. */
function isPast(entry: JournalEntry, upTo: JournalEntry): boolean {
  const boot = fieldText(entry.fields['_BOOT_ID']);
  return boot !== undefined && boot === fieldText(upTo.fields['_BOOT_ID']) && entry.monotonic > upTo.monotonic;
}
