/** What the task service needs of whoever starts its units (the privileged starter, or itself). */
export interface TaskStartRequest {
  taskId: string;
  machine: string;
  parameters: unknown;
}

export interface CheckRequest {
  machine: string;
  parameters: unknown;
}

/**
 * What a machine's check said of a request's parameters: valid; invalid (the client's error, with
 * the check's reason); or no verdict, because the check could not run or did not end in time.
 * Reasons never repeat the parameters (withoutParameters).
 */
export type CheckVerdict =
  | { outcome: 'valid' }
  | { outcome: 'invalid'; reason: string }
  | { outcome: 'broken'; reason: string }
  | { outcome: 'timeout'; reason: string };

/** The starter runs as many checks as it may already: the request may be sent again shortly. */
export class CheckersBusyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckersBusyError';
  }
}

export interface TaskStarter {
  /** Resolves with the start job's result ("done", "failed", …) once systemd has finished it. */
  start(request: TaskStartRequest): Promise<string>;
  /** Runs the machine's check (its unit, its sandbox) and resolves with its verdict; CheckersBusyError when too many run. */
  check(request: CheckRequest): Promise<CheckVerdict>;
}
