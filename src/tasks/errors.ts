/**
 * Every error the service layer reports to its callers, in one catalog. The API maps `code` to an
 * HTTP status in one place (src/api/errors.ts); the message is for humans.
 */
export const ErrorCodes = {
  INVALID_REQUEST: 'the request does not match the schema',
  INVALID_PARAMETERS: 'the machine rejected the parameters',
  UNKNOWN_MACHINE: 'no machine of that name is configured',
  TASK_NOT_FOUND: 'no task with that id',
  INVALID_CURSOR: 'the cursor is malformed or not one of this task\'s entries',
  JOURNAL_UNAVAILABLE: 'the journal could not be read',
  START_FAILED: 'systemd could not start the task unit',
  TOO_MANY_TASKS: 'too many tasks are active',
  PARAMETERS_TOO_LARGE: 'the parameters are too large',
  SYSTEMD_UNAVAILABLE: 'the system bus or systemd did not answer',
  SHUTTING_DOWN: 'the runner is shutting down',
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

export class TaskError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code], options);
    this.name = 'TaskError';
    this.code = code;
  }
}
