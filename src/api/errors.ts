import type { ErrorRequestHandler } from 'express';
import { TaskError, type ErrorCode } from '../tasks/errors.js';

/** Domain error codes → HTTP status, in one table. */
export const STATUS_OF: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  INVALID_PARAMETERS: 400,
  UNKNOWN_MACHINE: 400,
  TASK_NOT_FOUND: 404,
  INVALID_CURSOR: 400,
  JOURNAL_UNAVAILABLE: 503,
  START_FAILED: 500,
  TOO_MANY_TASKS: 429,
  PARAMETERS_TOO_LARGE: 413,
  SYSTEMD_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Errors from body parsing (http-errors from body-parser) carry `type` and `status`. */
interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message: string;
}

const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'INVALID_JSON', 'the request body is not valid JSON'],
  'entity.too.large': [413, 'BODY_TOO_LARGE', 'the request body is too large'],
  'encoding.unsupported': [415, 'UNSUPPORTED_ENCODING', 'unsupported content encoding'],
  'charset.unsupported': [415, 'UNSUPPORTED_CHARSET', 'unsupported charset'],
  'request.aborted': [400, 'REQUEST_ABORTED', 'the request was aborted'],
};

/** Every error becomes `{"detail": …, "code": …}`; internal ones are logged, not shown. */
export const errorHandler: ErrorRequestHandler = (error, request, response, _next) => {
  let status = 500;
  let code = 'INTERNAL';
  let detail = 'internal error';
  if (error instanceof TaskError) {
    status = STATUS_OF[error.code];
    code = error.code;
    detail = error.message;
  } else if (error instanceof HttpError) {
    status = error.status;
    code = error.code;
    detail = error.message;
  } else {
    const bodyError = error as BodyParserError;
    const known = bodyError.type ? BODY_ERRORS[bodyError.type] : undefined;
    if (known) [status, code, detail] = known;
    else if (bodyError.expose && bodyError.status && bodyError.status < 500) {
      status = bodyError.status;
      code = 'BAD_REQUEST';
      detail = bodyError.message;
    }
  }
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  if (response.headersSent) {
    response.destroy();
    return;
  }
  // Busy or briefly unavailable: tell clients when to come back.
  if (status === 429 || status === 503) response.set('Retry-After', '5');
  response.status(status).json({ detail, code });
};
