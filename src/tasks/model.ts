/**
 * Terminology
 * - task: one run of a machine, started through the API; it *is* a transient systemd unit.
 * - machine: a task type registered in the config (the built-in `echo`, or an executable).
 * - unit: `tessia-task-<id>.service`, in the tasks slice; systemd owns its processes.
 * - invocation: systemd's id for one run of a unit (InvocationID); journal entries carry it.
 * - state: where a task is in its life (see TaskState).
 * - exit code: the tessia result of a finished task (see ExitCode).
 */

export const TaskState = {
  created: 'created',
  running: 'running',
  stopping: 'stopping',
  exited: 'exited',
  lost: 'lost',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];
export type ActiveState = typeof TaskState.created | typeof TaskState.running | typeof TaskState.stopping;
export type FinishedState = typeof TaskState.exited | typeof TaskState.lost;

/** Every state, in the order of a task's life; the store, metrics and the API schema use these lists. */
export const TASK_STATES: readonly TaskState[] = Object.values(TaskState);
export const ACTIVE_STATES: readonly ActiveState[] = [TaskState.created, TaskState.running, TaskState.stopping];
export const FINISHED_STATES: readonly FinishedState[] = [TaskState.exited, TaskState.lost];

/** The moves a task may make; anything else is ignored (and logged) by the transition function. */
export const LEGAL_NEXT: Record<TaskState, readonly TaskState[]> = {
  created: [TaskState.running, TaskState.stopping, TaskState.exited, TaskState.lost],
  running: [TaskState.stopping, TaskState.exited, TaskState.lost],
  stopping: [TaskState.exited, TaskState.lost],
  exited: [],
  lost: [],
};

/** tessia exit codes; any other value is the machine's own exit status. */
export const ExitCode = {
  success: 0,
  canceled: -1,
  timeout: -2,
  exception: -3,
  undetermined: -99,
} as const;

/**
 * What a task cost, from its cgroup's counters (systemd reads the same ones for its unit
 * properties); null where this host's cgroup hierarchy does not count it.
 */
export interface TaskUsage {
  /** CPU time, user and system, in nanoseconds. */
  cpuNsec: number | null;
  /** Memory in use now (0 once the task has ended). */
  memoryBytes: number | null;
  /** The most memory it used at once, over its life so far. */
  memoryPeakBytes: number | null;
  ioReadBytes: number | null;
  ioWriteBytes: number | null;
  /** Processes and threads now. */
  tasks: number | null;
  /** When these were read. */
  sampledAt: string;
}

/** A change of a task's state, as the event stream delivers it; `id` orders them, across restarts. */
export interface TaskEvent {
  id: number;
  taskId: string;
  machine: string;
  state: TaskState;
  exitCode: number | null;
  result: string | null;
  detail: string | null;
  /**
   * When the change happened: systemd's time for a start and an end, the runner's for the rest (so
   * `at` may not grow with `id`).
   */
  at: string;
  /** It happened while the runner was not watching (down, or without the bus), and recovery found it. */
  recovered: boolean;
  /** A DELETE: the task is gone from the API (its state is the one it had); its events stay until retention. */
  deleted: boolean;
}

interface TaskBase {
  taskId: string;
  machine: string;
  unit: string;
  createdAt: string;
  /** Set once systemd reported the unit running. */
  startedAt: string | null;
  invocationId: string | null;
  /** A stop was asked for: the end that follows is a cancel (-1), even across a restart. */
  stopRequested: boolean;
  /** The last usage read: at its end for a finished task; null until read. */
  usage: TaskUsage | null;
}

export interface ActiveTask extends TaskBase {
  state: ActiveState;
  exitCode: null;
  result: null;
  finishedAt: null;
  /** How the task came to be, when that is unusual (adopted at start-up). */
  detail: string | null;
}

export interface FinishedTask extends TaskBase {
  state: FinishedState;
  exitCode: number;
  /** systemd's Result of the unit ("success", "exit-code", "timeout", …), null when unknown. */
  result: string | null;
  finishedAt: string;
  /** Why the task ended the way it did, for humans. */
  detail: string | null;
}

export type TaskRecord = ActiveTask | FinishedTask;

export function isFinished(task: TaskRecord): task is FinishedTask {
  return isFinishedState(task.state);
}

export function isFinishedState(state: TaskState): state is FinishedState {
  return (FINISHED_STATES as readonly TaskState[]).includes(state);
}
