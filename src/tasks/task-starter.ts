/** What the task service needs of whoever starts its units (the privileged starter, or itself). */
export interface TaskStartRequest {
  taskId: string;
  machine: string;
  parameters: unknown;
}

export interface TaskStarter {
  /** Resolves with the start job's result ("done", "failed", …) once systemd has finished it. */
  start(request: TaskStartRequest): Promise<string>;
}
