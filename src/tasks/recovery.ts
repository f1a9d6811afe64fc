/**
 * Start-up reconciliation of the store with systemd, before the runner says it is ready.
 *
 * - a task the store has as active: followed again; systemd's state wins (still running, or the
 *   result it kept with RemainAfterExit while the runner was down);
 * - an active task whose unit is gone: `lost`, -99 (or -1 when a stop had been asked for);
 * - a finished task whose unit systemd still keeps (the runner died before collecting it): collected;
 * - a task unit the store has no record of (the store was lost or replaced): adopted as a task, so
 *   it can be seen, stopped and collected like any other.
 */
import type { Logger } from 'pino';
import type { SystemdClient } from '../systemd/client.js';
import { TaskState, isFinished } from './model.js';
import type { TaskStore } from './store.js';
import { isoFromMicros, nowIso } from './time.js';
import type { UnitTracker } from './tracking.js';
import { TASK_UNIT_GLOB, taskIdOf } from './unit-names.js';

export interface RecoveryReport {
  reattached: number;
  finishedWhileDown: number;
  lost: number;
  collected: number;
  adopted: number;
}

export async function recoverTasks(store: TaskStore, systemd: SystemdClient, tracker: UnitTracker, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = { reattached: 0, finishedWhileDown: 0, lost: 0, collected: 0, adopted: 0 };
  const units = await systemd.listUnits([TASK_UNIT_GLOB]);
  const loaded = units.filter((unit) => unit.loadState !== 'not-found').map((unit) => unit.name);

  const active = store.listActive();
  await Promise.all(active.map((task) => tracker.reattach(task)));
  for (const task of active) {
    const now = store.find(task.taskId)?.task;
    if (!now || !isFinished(now)) report.reattached += 1;
    else if (now.state === TaskState.lost) report.lost += 1;
    else report.finishedWhileDown += 1;
  }

  for (const unit of loaded) {
    const taskId = taskIdOf(unit);
    if (taskId === null) continue;
    const found = store.find(taskId);
    if (found && isFinished(found.task)) {
      await tracker.collect(taskId, unit);
      report.collected += 1;
    } else if (!found && (await adopt(store, systemd, tracker, taskId, unit))) {
      log.warn({ taskId, unit, state: store.find(taskId)?.task.state }, 'adopted a task unit the store had no record of');
      report.adopted += 1;
    }
  }
  log.info(report, 'recovery done');
  return report;
}

async function adopt(store: TaskStore, systemd: SystemdClient, tracker: UnitTracker, taskId: string, unit: string): Promise<boolean> {
  const snapshot = await systemd.getUnit(unit);
  if (snapshot === null) return false;
  const environment = await systemd.getEnvironment(unit).catch(() => []);
  const machine = environment.find((entry) => entry.startsWith('TESSIA_MACHINE='))?.slice('TESSIA_MACHINE='.length) ?? 'unknown';
  const createdAt = snapshot.activeEnterTimestamp > 0n ? isoFromMicros(snapshot.activeEnterTimestamp) : nowIso();
  store.insert({ taskId, machine, unit, createdAt });
  store.update(taskId, { detail: 'adopted at start-up: systemd had the unit, the store had no record of it' });
  const task = store.find(taskId)?.task;
  if (task) await tracker.reattach(task);
  return true;
}
