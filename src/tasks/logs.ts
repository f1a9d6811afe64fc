/**
 * A task's journal as a sequence of events: batches of entries, then an end carrying the task's
 * state. Following keeps reading new entries until the task has finished and journald has had
 * nothing more to say about it for a settle period (journald lags fast writers, so the end of the
 * unit alone is not the end of its output), then drains what is left after the last entry passed on.
 *
 * The order in which it passes entries on: FollowOrder (two journals, merged by time).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { fieldText, type JournalEntry } from '../journal/entry.js';
import { isCursor, type JournalNamespace, type JournalQuery } from '../journal/query.js';
import { JournalctlError, readJournal } from '../journal/reader.js';
import { TASK_LOG_NAMESPACE } from '../package-layout.js';
import { TaskError } from './errors.js';
import { FollowOrder } from './follow-order.js';
import { isFinished, type TaskRecord } from './model.js';
import type { TaskService } from './service.js';

/** What the API sees of the journal: entries (lossless fields), read through here only. */
export type { JournalEntry as LogEntry, Field as LogField } from '../journal/entry.js';
export { fieldText } from '../journal/entry.js';
export { CURSOR_PATTERN } from '../journal/query.js';
export { PRIORITY_NAMES, parsePriority, priorityName } from '../journal/priority.js';
export { isSystemdLine } from './follow-order.js';

export interface LogRequest {
  taskId: string;
  follow: boolean;
  afterCursor?: string;
  tail?: number;
  since?: Date;
  until?: Date;
  maxPriority?: number;
}

const LONG_FINISHED_MS = 30_000;
/** journalctl's message for a cursor it cannot seek to (journalctl.c, "Failed to seek to cursor: %m"). */
const SEEK_REFUSED = 'Failed to seek to cursor';
/**
 * A task's output is in the tasks' journal namespace, systemd's lines about its unit in the default
 * one (PID 1 logs there, whatever the unit's LogNamespace=): read both, interleaved.
 */
const TASK_JOURNALS: JournalNamespace = { name: TASK_LOG_NAMESPACE, andDefault: true };

export type LogEvent = { type: 'entries'; entries: JournalEntry[] } | { type: 'end'; task: TaskRecord };

export interface TaskLogOptions {
  /** Quiet time after a followed task has finished before its stream ends. (Default: 1 s) */
  settleMs: number;
  journalctl?: string;
}

export class TaskLogs {
  constructor(
    private readonly tasks: TaskService,
    private readonly options: TaskLogOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Checks everything that can be refused (unknown task, a cursor the journal cannot seek to) before
   * any entry is read, so the caller can still answer with an error status.
   */
  async open(request: LogRequest, signal: AbortSignal): Promise<AsyncIterable<LogEvent>> {
    const task = this.tasks.get(request.taskId);
    const query = this.query(task, request);
    if (request.afterCursor !== undefined) await this.assertSeekable(query, request.afterCursor, signal);
    // Long finished: everything journald will ever have of it is there already.
    const settledLongAgo = isFinished(task) && Date.now() - Date.parse(task.finishedAt) > LONG_FINISHED_MS;
    if (!request.follow || settledLongAgo) return this.once(task, { ...query, follow: false }, signal);
    return this.follow(task, query, signal);
  }

  private query(task: TaskRecord, request: LogRequest): JournalQuery {
    // The task's own entries (LogExtraFields, from its unit's processes: the runner's own lines about
    // the task carry TESSIA_TASK_ID too), and systemd's lines about its unit.
    const query: JournalQuery = {
      matches: [
        [
          ['TESSIA_TASK_ID', task.taskId],
          ['_SYSTEMD_UNIT', task.unit],
        ],
        [
          ['UNIT', task.unit],
          ['_PID', '1'],
        ],
      ],
      namespace: TASK_JOURNALS,
      follow: request.follow,
    };
    if (request.afterCursor !== undefined) query.afterCursor = request.afterCursor;
    if (request.tail !== undefined) query.tail = request.tail;
    if (request.since !== undefined) query.since = request.since;
    if (request.until !== undefined) query.until = request.until;
    if (request.maxPriority !== undefined) query.maxPriority = request.maxPriority;
    return query;
  }

  /**
   * A cursor is opaque: the journal itself says whether it can seek to it. It need not be one of this
   * task's entries, nor still in the journal: reading resumes at the task's first entry after that
   * position (journald seeks to the nearest entry when the cursor's own was rotated away).
   */
  private async assertSeekable(query: JournalQuery, cursor: string, signal: AbortSignal): Promise<void> {
    if (!isCursor(cursor)) throw new TaskError('INVALID_CURSOR', 'after: malformed cursor');
    const probe = new AbortController();
    const stop = () => probe.abort();
    signal.addEventListener('abort', stop, { once: true });
    const reader = readJournal({ matches: query.matches, namespace: TASK_JOURNALS, atCursor: cursor }, this.readerOptions(probe.signal));
    try {
      for await (const _batch of reader) break;
    } catch (error) {
      // journalctl ran and refused the cursor: its own message (LC_ALL=C.UTF-8). Anything else (it could
      // not be run, stdbuf could not run it) is the runner's fault, not the client's.
      if (error instanceof JournalctlError && error.exitCode !== null && error.stderr.includes(SEEK_REFUSED))
        throw new TaskError('INVALID_CURSOR', 'after: the journal cannot seek to that cursor', { cause: error });
      throw error;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  private async *once(task: TaskRecord, query: JournalQuery, signal: AbortSignal): AsyncGenerator<LogEvent> {
    for await (const batch of readJournal(query, this.readerOptions(signal))) {
      const entries = batch.filter((entry) => this.ofThisRun(task, entry));
      if (entries.length > 0) yield { type: 'entries', entries };
    }
    // Cut short (client gone, runner shutting down): no end line, the client resumes by cursor.
    if (signal.aborted) return;
    yield { type: 'end', task: this.tasks.get(task.taskId) };
  }

  private async *follow(task: TaskRecord, query: JournalQuery, signal: AbortSignal): AsyncGenerator<LogEvent> {
    const finished = this.tasks.whenFinished(task.taskId, signal);
    const readerStop = new AbortController();
    const stopReader = () => readerStop.abort();
    signal.addEventListener('abort', stopReader, { once: true });
    const reader = readJournal(query, this.readerOptions(readerStop.signal));
    const order = new FollowOrder(query, (readerSignal) => this.readerOptions(readerSignal), readerStop.signal, this.log);
    try {
      let next = reader.next();
      let taskDone = false;
      for (;;) {
        const settle = new AbortController();
        const waits: Promise<'batch' | 'finished' | 'settled'>[] = [next.then(() => 'batch' as const)];
        if (taskDone) waits.push(sleep(this.options.settleMs, 'settled' as const, { signal: settle.signal }).catch(() => 'batch' as const));
        else waits.push(finished.then(() => 'finished' as const));
        const what = await Promise.race(waits);
        settle.abort();
        if (what === 'finished') {
          taskDone = true;
          continue;
        }
        if (what === 'settled') break;
        const result = await next;
        if (result.done) {
          // journalctl ended while following a running task: without an inotify instance it prints
          // what there is and exits 0 ("Reverting to -n"). Not the end of the task's log: say so.
          if (!taskDone && !signal.aborted) {
            throw new TaskError(
              'LOGS_UNAVAILABLE',
              'journalctl stopped following: the host allows the runner no more inotify instances (fs.inotify.max_user_instances); resume from the last cursor later',
            );
          }
          break;
        }
        const entries = (await order.take(result.value)).filter((entry) => this.ofThisRun(task, entry));
        if (entries.length > 0) yield { type: 'entries', entries };
        next = reader.next();
      }
    } finally {
      readerStop.abort();
      await reader.return(undefined);
      signal.removeEventListener('abort', stopReader);
    }
    if (signal.aborted) return;
    // Whatever journald wrote between the last entry passed on and now (held lines included).
    yield* this.once(task, order.drainQuery(), signal);
  }

  /** Entries of an earlier unit that had the same task id (ids are 32 bits) are not this task's. */
  private ofThisRun(task: TaskRecord, entry: JournalEntry): boolean {
    if (task.invocationId === null) return true;
    const invocation = fieldText(entry.fields['_SYSTEMD_INVOCATION_ID']) ?? fieldText(entry.fields['INVOCATION_ID']);
    return invocation === undefined || invocation === task.invocationId;
  }

  private readerOptions(signal: AbortSignal) {
    return {
      signal,
      ...(this.options.journalctl ? { journalctl: this.options.journalctl } : {}),
      onSkippedLine: (why: string) => this.log.warn({ why }, 'skipped a journal line'),
    };
  }
}
