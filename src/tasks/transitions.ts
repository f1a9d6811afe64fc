/**
 * The only place a task comes to be or changes state: checks that the move is legal, writes it with
 * its event, and tells whoever waits. Lifecycle (requests), unit tracking (systemd's signals) and
 * recovery all create and move tasks through here.
 */
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { LEGAL_NEXT, isFinished, isFinishedState, type FinishedTask, type TaskEvent, type TaskRecord } from './model.js';
import type { IdempotencyKey, TaskPatch, TaskStore } from './store.js';
import { isoFromMicros, nowIso } from './time.js';

export class TaskTransitions extends EventEmitter<{ changed: [TaskRecord]; event: [TaskEvent] }> {
  /** Waiters of whenFinished, by task: one lookup per change, however many streams follow a task. */
  private readonly finishWaiters = new Map<string, Set<(task: FinishedTask) => void>>();

  constructor(
    private readonly store: TaskStore,
    private readonly log: Logger,
    /** Tests: called once an event is written, before anyone is told (to crash the runner there). */
    private readonly afterEvent?: (event: TaskEvent) => void,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** Records a new task ("created"), with the client's idempotency key if it sent one. */
  create(task: Pick<TaskRecord, 'taskId' | 'machine' | 'unit' | 'createdAt'>, idempotency?: IdempotencyKey, recovered = false): void {
    const event = this.store.insert(task, idempotency, recovered);
    this.afterEvent?.(event);
    const created = this.store.find(task.taskId)?.task;
    if (created) this.emit('changed', created);
    this.emit('event', event);
  }

  /** DELETE's intent (TaskStore.forget), with the event that says the task is deleted. */
  forget(taskId: string): void {
    const event = this.store.forget(taskId);
    if (event) this.emit('event', event);
  }

  /** Undoes forget() (systemd refused the stop): the task is visible again, and an event says so. */
  unforget(taskId: string, stopRequested: boolean): void {
    const event = this.store.unforget(taskId, stopRequested);
    if (event) this.emit('event', event);
  }

  /**
   * Applies `patch` if the move from the task's current state is legal. `endMicros`: when the task
   * ended, by systemd's clock (µs since the epoch), for a patch that finishes it. `recovered`: the
   * change happened while the runner was not watching (recovery, a lost bus found it).
   */
  move(stale: TaskRecord, patch: TaskPatch, endMicros = 0n, recovered = false): void {
    // The caller's record may be older than an await: decide on the store's, where a finished task is final.
    const task = this.store.find(stale.taskId)?.task;
    if (!task || isFinished(task)) return;
    const next = patch.state ?? task.state;
    if (next !== task.state && !LEGAL_NEXT[task.state].includes(next)) {
      this.log.warn({ taskId: task.taskId, from: task.state, to: next }, 'ignored an illegal state change');
      return;
    }
    // A signal that repeats what the record says (systemd tells of a job, or of each interface
    // apart) is not written: a transaction each, some per stop, for nothing.
    if (changesNothing(task, patch)) return;
    const write: TaskPatch = { ...patch };
    if (isFinishedState(next) && write.finishedAt === undefined) {
      write.finishedAt = endMicros > 0n ? isoFromMicros(endMicros) : nowIso();
    }
    const written = this.store.transition(task.taskId, write, recovered);
    if (!written) return;
    const { task: updated, event } = written;
    if (event) this.afterEvent?.(event);
    if (event) {
      const fields = { taskId: task.taskId, state: updated.state, exitCode: updated.exitCode };
      // In the next turn: what waits for the change (a start's or a stop's answer) is written first.
      // The record is the store's; a runner that dies within this turn loses only this entry, and
      // the serve command lets a turn pass before its last flush.
      setImmediate(() => this.log.info(fields, `task ${updated.state}`));
    }
    this.emit('changed', updated);
    if (event) this.emit('event', event);
    if (isFinished(updated)) this.settle(updated);
  }

  /**
   * Resolves with the task once it has finished, or with undefined when `signal` aborts first (or
   * the task is unknown). Never rejects. The waiter is registered before the current state is read,
   * so a change in between cannot be missed.
   */
  whenFinished(taskId: string, signal: AbortSignal): Promise<FinishedTask | undefined> {
    return new Promise((resolve) => {
      const waiters = this.finishWaiters.get(taskId) ?? new Set();
      this.finishWaiters.set(taskId, waiters);
      const done = (task: FinishedTask | undefined) => {
        waiters.delete(onFinished);
        if (waiters.size === 0 && this.finishWaiters.get(taskId) === waiters) this.finishWaiters.delete(taskId);
        signal.removeEventListener('abort', onAbort);
        resolve(task);
      };
      const onFinished = (task: FinishedTask) => done(task);
      const onAbort = () => done(undefined);
      waiters.add(onFinished);
      signal.addEventListener('abort', onAbort, { once: true });
      const current = this.store.find(taskId)?.task;
      if (signal.aborted || !current) done(undefined);
      else if (isFinished(current)) done(current);
    });
  }

  close(): void {
    this.removeAllListeners();
  }

  private settle(task: FinishedTask): void {
    const waiters = this.finishWaiters.get(task.taskId);
    if (!waiters) return;
    for (const resolve of [...waiters]) resolve(task);
  }
}

/** Whether `patch` holds only what `task` has already. */
function changesNothing(task: TaskRecord, patch: TaskPatch): boolean {
  return (Object.keys(patch) as (keyof TaskPatch)[]).every((key) => isDeepStrictEqual(task[key], patch[key]));
}
