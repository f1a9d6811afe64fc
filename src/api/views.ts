import type { TaskRecord } from '../tasks/model.js';

/** The tessia v1 keys first, then everything systemd and the store know. */
export function fullView(task: TaskRecord) {
  return {
    taskId: task.taskId,
    state: task.state,
    machine: task.machine,
    exitCode: task.exitCode,
    result: task.result,
    detail: task.detail,
    createdAt: task.createdAt,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    unit: task.unit,
    invocationId: task.invocationId,
    stopRequested: task.stopRequested,
  };
}
