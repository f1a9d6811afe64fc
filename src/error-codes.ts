/**
 * Every error code a client can receive, with its HTTP status and what it means: the one catalog of
 * the wire vocabulary (docs/errors.md documents each; a test keeps the two in step). The task layer
 * throws TaskError with one of these codes; the API maps any code to its status here, nowhere else.
 */
export const ERROR_CODES = {
  // The request
  INVALID_REQUEST: { status: 400, summary: 'the request does not match the schema' },
  INVALID_JSON: { status: 400, summary: 'the request body is not valid JSON' },
  TOO_DEEP: { status: 400, summary: 'the request body nests deeper than limits.maxJsonDepth' },
  REQUEST_ABORTED: { status: 400, summary: 'the client aborted the request body' },
  BAD_REQUEST: { status: 400, summary: 'the request is malformed' },
  BODY_TOO_LARGE: { status: 413, summary: 'the request body is larger than limits.maxBodyBytes' },
  UNSUPPORTED_ENCODING: { status: 415, summary: 'the request body has a content encoding the runner does not accept' },
  UNSUPPORTED_CHARSET: { status: 415, summary: 'the request body has a charset the runner does not accept' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'a request with a body must send it as Content-Type: application/json' },
  NOT_FOUND: { status: 404, summary: 'no such endpoint' },
  // Who calls
  UNAUTHENTICATED: { status: 401, summary: 'no valid credentials (client certificate or bearer token)' },
  FORBIDDEN: { status: 403, summary: "the caller's scope does not allow it" },
  HOST_NOT_ALLOWED: { status: 421, summary: "the Host header is not one of the runner's names (allowedHosts)" },
  ORIGIN_NOT_ALLOWED: { status: 403, summary: 'the Origin header is not one of allowedOrigins: browsers may not call' },
  // Tasks
  INVALID_PARAMETERS: { status: 400, summary: 'the machine rejected the parameters' },
  UNKNOWN_MACHINE: { status: 400, summary: 'no machine of that name is configured' },
  PARAMETERS_TOO_LARGE: { status: 413, summary: 'the parameters are larger than limits.maxParameterBytes' },
  TASK_NOT_FOUND: { status: 404, summary: 'no task with that id' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, summary: 'the Idempotency-Key started a task for another request (machine or parameters)' },
  INVALID_CURSOR: { status: 400, summary: 'the journal cannot seek to that cursor' },
  TOO_MANY_LOG_STREAMS: { status: 429, summary: 'limits.maxLogStreams log streams are open; retry after Retry-After' },
  TOO_MANY_EVENT_STREAMS: { status: 429, summary: 'limits.maxEventStreams event streams are open; retry after Retry-After' },
  LOGS_UNAVAILABLE: { status: 503, summary: "journalctl cannot follow the journal now (the runner's user has no inotify instance left)" },
  TOO_MANY_TASKS: { status: 429, summary: 'limits.maxActiveTasks tasks are active; retry after Retry-After' },
  MACHINE_BUSY: { status: 429, summary: "the machine's limits.maxActive tasks are active; retry after Retry-After" },
  START_FAILED: { status: 500, summary: 'systemd could not start the task unit' },
  CHECK_FAILED: {
    status: 500,
    summary: "the machine's check of the parameters could not run (a missing dependency, a crash, a signal): nothing was started",
  },
  TOO_MANY_CHECKS: { status: 429, summary: "limits.maxActiveChecks machines' checks are under way; retry after Retry-After" },
  CHECK_TIMEOUT: {
    status: 503,
    summary: "the machine's check of the parameters did not end within its limits.checkTimeoutSec: nothing was started",
  },
  // A task's files
  INVALID_FILE_PATH: {
    status: 400,
    summary: "the file path is not a plain path inside the task's directory (empty, ., .. or %2F components, NUL, too long)",
  },
  FILE_NOT_FOUND: { status: 404, summary: "no such file in the task's working directory (or it has none)" },
  NOT_A_FILE: {
    status: 400,
    summary:
      "the path leads to a directory, a symbolic link, a FIFO, a socket or another user's file: only the task's regular files are served",
  },
  FILE_TOO_LARGE: {
    status: 413,
    summary: 'the file (or the range asked for) is larger than limits.maxFileBytes: ask for a part with Range',
  },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'the Range asked for is not within the file (Content-Range gives its size)' },
  FILES_UNAVAILABLE: { status: 503, summary: 'the files service (tessia-task-runner-files.socket) did not answer' },
  // The runner and its surroundings
  SYSTEMD_UNAVAILABLE: { status: 503, summary: 'the system bus or systemd did not answer' },
  STORE_UNWRITABLE: {
    status: 503,
    summary:
      'the task store cannot be written (no space left under the state directory, an I/O error, a read-only file system): nothing was done; retry after Retry-After',
  },
  SHUTTING_DOWN: { status: 503, summary: 'the runner is shutting down (tasks keep running); retry after Retry-After' },
  INTERNAL: { status: 500, summary: 'an error in the runner (logged)' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
