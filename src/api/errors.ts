import type { ErrorRequestHandler } from 'express';
import { ERROR_CODES, statusOf, type ErrorCode } from '../error-codes.js';
import { TaskError } from '../tasks/errors.js';
import { FilesError } from '../files/task-files.js';

/** An error of the HTTP layer itself (authentication, body parsing, routing): a code of the catalog. */
export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = ERROR_CODES[code].summary,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Errors from body parsing (http-errors from body-parser) carry `type` and `status`. */
interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message: string;
}

const BODY_ERRORS: Record<string, ErrorCode> = {
  'entity.parse.failed': 'INVALID_JSON',
  'entity.too.large': 'BODY_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_ENCODING',
  'charset.unsupported': 'UNSUPPORTED_CHARSET',
  'request.aborted': 'REQUEST_ABORTED',
};

function codeAndDetail(error: unknown): [ErrorCode, string] {
  if (error instanceof TaskError || error instanceof HttpError || error instanceof FilesError) return [error.code, error.message];
  const bodyError = error as BodyParserError;
  const known = bodyError.type === undefined ? undefined : BODY_ERRORS[bodyError.type];
  if (known) return [known, ERROR_CODES[known].summary];
  if (bodyError.expose && bodyError.status && bodyError.status < 500) return ['BAD_REQUEST', bodyError.message];
  return ['INTERNAL', 'internal error'];
}

/** Every error becomes `{"detail": …, "code": …}`; internal ones are logged, not shown. */
export const errorHandler: ErrorRequestHandler = (error, request, response, _next) => {
  const [code, detail] = codeAndDetail(error);
  const status = statusOf(code);
  // A full store is logged once for all, when it fills (StoreHealth): not once per refused request.
  if (status >= 500 && code !== 'STORE_UNWRITABLE') request.log.error({ err: error }, 'request failed');
  if (response.headersSent) {
    response.destroy();
    return;
  }
  // Busy or briefly unavailable: tell clients when to come back.
  if (status === 429 || status === 503) response.set('Retry-After', '5');
  response.status(status).json({ detail, code });
};
