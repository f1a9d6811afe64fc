import type { Machine } from '../machines/registry.js';
import type { TaskRecord, TaskUsage } from '../tasks/model.js';

/**
 * The tessia v1 keys first, then everything systemd and the store know. `usage`: read just now for
 * a task that runs; a finished task's is the one it ended with.
 */
export function fullView(task: TaskRecord, usage: TaskUsage | null = task.usage) {
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
    usage,
  };
}

/** A machine as clients choose one: never its command, environment or sandbox. */
export function machineView(machine: Machine) {
  return { name: machine.name, description: machine.config.description, kind: machine.kind };
}
