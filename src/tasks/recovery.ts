/**
 * Start-up reconciliation of the store with systemd, before the runner says it is ready.
 *
 * - a task the store has as active: followed again; systemd's state wins (still running, or the
 *   result it kept with RemainAfterExit while the runner was down);
 * - an active task whose unit is gone: `lost`, -99 (or -1 when a stop had been asked for);
 * - a finished task whose unit systemd still keeps (the runner died before collecting it): collected;
 * - a unit of ours the store has no record of: adopted as a task (see TaskService.adopt).
 */
import type { Logger } from 'pino';
import type { SystemdClient } from '../systemd/client.js';
import { isFinished } from './model.js';
import { UNIT_PREFIX, taskIdOf, type TaskService } from './service.js';
import type { TaskStore } from './store.js';

export interface RecoveryReport {
  reattached: number;
  finishedWhileDown: number;
  lost: number;
  collected: number;
  adopted: number;
}

export async function recoverTasks(store: TaskStore, systemd: SystemdClient, tasks: TaskService, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = { reattached: 0, finishedWhileDown: 0, lost: 0, collected: 0, adopted: 0 };
  const units = await systemd.listUnits([`${UNIT_PREFIX}*.service`]);
  const loaded = new Set(units.filter((unit) => unit.loadState !== 'not-found').map((unit) => unit.name));

  const active = store.listActive();
  await Promise.all(active.map((task) => tasks.reattach(task)));
  for (const task of active) {
    const now = store.find(task.taskId)?.task;
    if (!now || !isFinished(now)) report.reattached += 1;
    else if (now.state === 'lost') report.lost += 1;
    else report.finishedWhileDown += 1;
  }

  for (const name of loaded) {
    const taskId = taskIdOf(name);
    if (taskId === null) {
      log.warn({ unit: name }, 'a unit named like ours that is not a task unit: left alone');
      continue;
    }
    const found = store.find(taskId);
    if (found && isFinished(found.task)) {
      await tasks.collectFinished(found.task);
      report.collected += 1;
    } else if (!found) {
      const snapshot = await systemd.getUnit(name);
      if (snapshot === null) continue;
      const task = await tasks.adopt(snapshot, taskId);
      log.warn({ taskId, unit: name, state: task.state }, 'adopted a task unit the store had no record of');
      report.adopted += 1;
    }
  }
  log.info(report, 'recovery done');
  return report;
}
