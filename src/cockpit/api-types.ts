/** The runner's answers as the page reads them (the API's OpenAPI document has them all: GET /v1/openapi.json). */
export type TaskState = 'created' | 'running' | 'stopping' | 'exited' | 'lost';

export const TASK_STATES: readonly TaskState[] = ['created', 'running', 'stopping', 'exited', 'lost'];

export interface TaskUsage {
  cpuNsec: number | null;
  memoryBytes: number | null;
  memoryPeakBytes: number | null;
  ioReadBytes: number | null;
  ioWriteBytes: number | null;
  tasks: number | null;
}

export interface Task {
  taskId: string;
  state: TaskState;
  machine: string;
  exitCode: number | null;
  result: string | null;
  detail: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  unit: string;
  stopRequested: boolean;
  usage: TaskUsage | null;
}

export interface MachineInfo {
  name: string;
  description: string;
  kind: string;
}

/** The package's API socket (src/package-layout.ts PACKAGE_API_SOCKET), unless the manifest's config says another. */
export const DEFAULT_SOCKET = '/run/tessia-task-runner.sock';

/** A task id as the runner makes them (src/tasks/unit-names.ts): 8 hex digits. */
export const TASK_ID = /^[0-9a-f]{8}$/;

export const isFinished = (task: Task) => task.state === 'exited' || task.state === 'lost';
