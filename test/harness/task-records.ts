/** Task records as the store gives them, for tests of what is built from one (views, log streams). */
import { ExitCode, TaskState, type ActiveTask, type FinishedTask } from '../../src/tasks/model.js';

const BASE = {
  taskId: 'abcd1234',
  machine: 'echo',
  unit: 'tessia-task-abcd1234.service',
  createdAt: '2026-01-02T03:04:00.000000Z',
  startedAt: '2026-01-02T03:04:01.000000Z',
  invocationId: '0123456789abcdef0123456789abcdef',
  stopRequested: false,
  usage: null,
  detail: null,
};

export function runningTask(overrides: Partial<ActiveTask> = {}): ActiveTask {
  return { ...BASE, state: TaskState.running, exitCode: null, result: null, finishedAt: null, ...overrides };
}

export function finishedTask(overrides: Partial<FinishedTask> = {}): FinishedTask {
  return {
    ...BASE,
    state: TaskState.exited,
    exitCode: ExitCode.success,
    result: 'success',
    finishedAt: '2026-01-02T03:04:06.000000Z',
    ...overrides,
  };
}
