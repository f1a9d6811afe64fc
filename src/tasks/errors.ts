import { ERROR_CODES, type ErrorCode } from '../error-codes.js';

/** An error the task layer reports to its callers: a code of the catalog, and a message for humans. */
export class TaskError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].summary, options);
    this.name = 'TaskError';
    this.code = code;
  }
}
