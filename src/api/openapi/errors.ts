/**
 * The error answers of an operation, from the codes it can give: grouped by their status (the
 * catalog's, src/error-codes.ts), each status's body `{detail, code}` with `code` limited to those
 * codes and described by their summaries. The headers the error handler adds go with them.
 */
import { z } from 'zod';
import { ERROR_CODES, statusOf, type ErrorCode } from '../../error-codes.js';

/** Every request passes the browser checks and the shutdown gate; any handler may fail (logged). */
export const ANY_REQUEST: readonly ErrorCode[] = ['HOST_NOT_ALLOWED', 'ORIGIN_NOT_ALLOWED', 'SHUTTING_DOWN', 'INTERNAL'];
/** /metrics and everything under /v1: credentials, when the caller's connection gives none. */
export const AUTHENTICATED: readonly ErrorCode[] = ['UNAUTHENTICATED'];
/** A request that changes something also needs the write scope. */
export const WRITE: readonly ErrorCode[] = ['UNAUTHENTICATED', 'FORBIDDEN'];
/** A JSON body, as express.json() and the body checks read it (REQUEST_ABORTED reaches no client). */
export const JSON_BODY: readonly ErrorCode[] = [
  'UNSUPPORTED_MEDIA_TYPE',
  'INVALID_JSON',
  'TOO_DEEP',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_ENCODING',
  'UNSUPPORTED_CHARSET',
  'BAD_REQUEST',
];

const RetryAfter = z.object({
  'Retry-After': z.string().regex(/^\d+$/).meta({ description: 'seconds to wait before trying again' }),
});
const ContentRange = z.object({
  'Content-Range': z
    .string()
    .regex(/^bytes \*\/\d+$/)
    .meta({ description: "bytes */<the file's size>" }),
});
const WwwAuthenticate = z.object({
  'WWW-Authenticate': z.string().optional().meta({ description: 'Bearer realm="tessia-task-runner": how to authenticate' }),
});

/** What the error handler (Retry-After), authentication (WWW-Authenticate) and the files route (Content-Range) add. */
const HEADERS: Partial<Record<number, z.ZodObject>> = { 401: WwwAuthenticate, 416: ContentRange, 429: RetryAfter, 503: RetryAfter };

/** The body of an error answer with one of `codes`. */
export function errorBody(codes: readonly ErrorCode[]) {
  return z.object({
    detail: z.string().meta({ description: 'what went wrong, for humans' }),
    code: z.enum(codes as [ErrorCode, ...ErrorCode[]]).meta({ description: 'what went wrong, for programs (docs/errors.md)' }),
  });
}

/** `codes` (duplicates allowed) as OpenAPI responses by status. */
export function errorResponses(...codeLists: (readonly ErrorCode[])[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codeLists.flat())) {
    const status = statusOf(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<
    `${number}`,
    { description: string; headers?: z.ZodObject; content: { 'application/json': { schema: z.ZodType } } }
  > = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers = HEADERS[status];
    responses[`${status}`] = {
      description: codes.map((code) => `${code}: ${ERROR_CODES[code].summary}`).join('; '),
      ...(headers ? { headers } : {}),
      content: { 'application/json': { schema: errorBody(codes) } },
    };
  }
  return responses;
}
