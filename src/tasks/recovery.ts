/**
 * Start-up reconciliation of the store with systemd, before the runner says it is ready.
 *
 * - a task the store has as active: followed again; systemd's state wins (still running, or the
 *   result it kept with RemainAfterExit while the runner was down);
 * - an active task whose unit is gone: `lost`, -99 (or -1 when a stop had been asked for);
 * - a finished task whose unit systemd still keeps (the runner died before collecting it): collected;
 * - a task unit the store has no record of (the store was lost or replaced): adopted as a task, so
 *   it can be seen, stopped and collected like any other;
 * - a task a DELETE marked forgotten whose row is still here (the runner died, or lost the bus,
 *   before its unit was gone): stopped again, and forgotten once its unit is gone (finishDeletes,
 *   also run on every reconnect);
 * - what it reads: one listing of the task units; of a unit the listing shows running as its task
 *   records, only its InvocationID; every other unit whole (settle(), below). Ready once all are settled;
 * - first, a change an older release made without its event (0.1.0 kept none: a store it used after
 *   this one, in a downgrade, has tasks created, ended and deleted without one): the event written
 *   now, so subscribers that resume learn of it.
 */
import type { Logger } from 'pino';
import { NO_SUCH_UNIT, SystemdError, type ListedUnit, type SystemdClient } from '../systemd/client.js';
import { TaskState, isFinished, type TaskRecord } from './model.js';
import type { TaskStore } from './store.js';
import { StoreUnwritableError } from './store-errors.js';
import { isoFromMicros, nowIso } from './time.js';
import type { UnitTracker } from './tracking.js';
import type { TaskTransitions } from './transitions.js';
import { TASK_UNIT_GLOB, taskIdOf } from './unit-names.js';

export interface RecoveryReport {
  reattached: number;
  finishedWhileDown: number;
  lost: number;
  collected: number;
  adopted: number;
  /** Deletes left unfinished: their unit stopped again, or collected, or already gone. */
  deletesResumed: number;
  /** Events written for changes an older release made without one. */
  missedEvents: number;
}

export async function recoverTasks(
  store: TaskStore,
  systemd: SystemdClient,
  tracker: UnitTracker,
  transitions: TaskTransitions,
  log: Logger,
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    reattached: 0,
    finishedWhileDown: 0,
    lost: 0,
    collected: 0,
    adopted: 0,
    deletesResumed: 0,
    missedEvents: 0,
  };
  const began = performance.now();
  // Before anything below moves a task, so each task's events stay in the order of its states.
  // No one subscribes yet (the API is not open): written, not emitted.
  report.missedEvents = store.appendMissedEvents().length;
  const active = store.listActive();
  // Followed before the listing: a unit that ends after it is heard of by its signals.
  const followed = active.filter((task) => tracker.watchAgain(task));
  const units = await systemd.listUnits([TASK_UNIT_GLOB]);
  const loaded = units.filter((unit) => unit.loadState !== 'not-found').map((unit) => unit.name);

  const listed = new Map(units.map((unit) => [unit.name, unit]));
  await Promise.all(followed.map((task) => settle(task, listed.get(task.unit), systemd, tracker)));
  for (const task of active) {
    const now = store.find(task.taskId)?.task;
    if (!now || !isFinished(now)) report.reattached += 1;
    else if (now.state === TaskState.lost) report.lost += 1;
    else report.finishedWhileDown += 1;
  }

  // Units of the tasks settled above are theirs already (followed, or collected with their end).
  const settled = new Set(followed.map((task) => task.unit));
  for (const unit of loaded) {
    const taskId = taskIdOf(unit);
    if (taskId === null || settled.has(unit)) continue;
    const found = store.find(taskId);
    if (found && isFinished(found.task)) {
      await tracker.collectFinished(found.task);
      report.collected += 1;
    } else if (!found) {
      try {
        if (!(await adopt(store, systemd, tracker, transitions, taskId, unit))) continue;
      } catch (error) {
        if (!(error instanceof StoreUnwritableError)) throw error;
        log.warn(
          { taskId, unit },
          'a task unit the store has no record of is left for the next start to adopt: the store cannot be written',
        );
        continue;
      }
      log.warn({ taskId, unit, state: store.find(taskId)?.task.state }, 'adopted a task unit the store had no record of');
      report.adopted += 1;
    }
  }
  report.deletesResumed = await finishDeletes(store, tracker, log);
  log.info({ ...report, durationMs: Math.round(performance.now() - began) }, 'recovery done');
  return report;
}

/**
 * An active task's unit after the restart. One the listing shows running, of a task recorded
 * running, is most units after a crash: only its InvocationID is read (one call), to be sure it is
 * still the run the task started (not the same name started again meanwhile). Any other — ended
 * while the runner was down, still starting, stopping, gone, or of another run — is read whole, and
 * its task moved as the tracker would have moved it.
 */
async function settle(task: TaskRecord, unit: ListedUnit | undefined, systemd: SystemdClient, tracker: UnitTracker): Promise<void> {
  if (task.state === TaskState.running && task.invocationId !== null && task.startedAt !== null && isRunning(unit)) {
    const invocationId = await systemd.getInvocationId(task.unit).catch(() => null);
    if (invocationId === task.invocationId) {
      tracker.confirmed(task.unit);
      return;
    }
  }
  await tracker.refresh(task.unit);
}

function isRunning(unit: ListedUnit | undefined): boolean {
  return unit?.loadState === 'loaded' && unit.activeState === 'active' && unit.subState === 'running';
}

/**
 * Finishes every delete that is not finished: a forgotten task still active gets its StopUnit again
 * (its unit's end then removes the row, tracking.ts); a finished one is collected and removed once
 * systemd has let its unit go. Never throws: what fails now is tried again at the next reconnect or
 * start. Resolves with the number of deletes it took up.
 */
export async function finishDeletes(store: TaskStore, tracker: UnitTracker, log: Logger): Promise<number> {
  const pending = store.listForgotten();
  await Promise.all(
    pending.map(async (task) => {
      try {
        if (isFinished(task)) {
          await tracker.collect(task.taskId, task.unit);
          return;
        }
        // Rows written before the stop request was part of forget(): the end that follows is still a cancel.
        if (!task.stopRequested) store.update(task.taskId, { stopRequested: true });
        await tracker.reattach(task);
        const now = store.find(task.taskId)?.task;
        // Its unit ended meanwhile: recorded, collected, and the row gone (or going) with it.
        if (!now || isFinished(now)) return;
        await tracker.control.stopUnit(task.unit);
        log.info({ taskId: task.taskId }, 'unfinished delete: stop sent again');
      } catch (error) {
        // Gone meanwhile: the reattach above, or its unit's last signals, settle it.
        if (error instanceof SystemdError && error.dbusName === NO_SUCH_UNIT) await tracker.refresh(task.unit);
        else log.warn({ taskId: task.taskId, err: error }, 'could not finish a delete; trying again at the next reconnect');
      }
    }),
  );
  return pending.length;
}

async function adopt(
  store: TaskStore,
  systemd: SystemdClient,
  tracker: UnitTracker,
  transitions: TaskTransitions,
  taskId: string,
  unit: string,
): Promise<boolean> {
  const snapshot = await systemd.getUnit(unit);
  if (snapshot === null) return false;
  const environment = await systemd.getEnvironment(unit).catch(() => []);
  const machine = environment.find((entry) => entry.startsWith('TESSIA_MACHINE='))?.slice('TESSIA_MACHINE='.length) ?? 'unknown';
  const createdAt = snapshot.activeEnterTimestamp > 0n ? isoFromMicros(snapshot.activeEnterTimestamp) : nowIso();
  transitions.create({ taskId, machine, unit, createdAt }, undefined, true);
  store.update(taskId, { detail: 'adopted at start-up: systemd had the unit, the store had no record of it' });
  const task = store.find(taskId)?.task;
  if (task) await tracker.reattach(task);
  return true;
}
