/**
 * The runner's API through Cockpit's bridge, over the runner's Unix socket (never a token: who may
 * connect is the socket's mode and group, and with administrative access the bridge is root).
 */
/* eslint-disable @typescript-eslint/no-unnecessary-type-parameters -- an answer's type is the caller's (api-types.ts), as the API documents it */
import { DEFAULT_SOCKET } from './api-types.js';
import { completeLines, nextPage, parseLine } from './wire.js';

/** Where the runner listens: the package's socket, or the manifest override's (/etc/cockpit/tessia-task-runner.override.json). */
export function runnerSocket(): string {
  const configured = cockpit.manifests['tessia-task-runner']?.config?.['socket'];
  if (configured === undefined) return DEFAULT_SOCKET;
  if (typeof configured === 'string' && SOCKET_PATH.test(configured) && !configured.split('/').includes('..')) return configured;
  console.warn(
    `tessia-task-runner: the configured socket ${JSON.stringify(configured)} is not a path under /run (outside /run/user, /run/lock, /run/shm): ${DEFAULT_SOCKET} is used`,
  );
  return DEFAULT_SOCKET;
}

/**
 * Under /run, but not where users may create files (/run/user, /run/lock, /run/shm): a socket there could
 * be another user's, who would read what the page sends.
 */
const SOCKET_PATH = /^\/run\/(?!user\/|lock\/|shm\/)[A-Za-z0-9._@-]+(\/[A-Za-z0-9._@-]+)*$/;

/** An answer the page shows as it is: the runner's own `detail`, or what kept the request from it. */
export class RunnerError extends Error {
  constructor(
    message: string,
    /** The HTTP status, or null when the runner was not reached. */
    readonly status: number | null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  get unreachable(): boolean {
    return this.status === null;
  }

  /** Worth asking again shortly (the runner restarting, busy, away): not a refusal of the request itself, nor of the user. */
  get transient(): boolean {
    return this.status === null ? this.code !== NOT_PERMITTED : this.status >= 500 || this.status === 429;
  }
}

/** The bridge's problem when the socket refuses the user (its mode and group). */
const NOT_PERMITTED = 'access-denied';

const isCockpitError = (error: unknown): error is CockpitHttpError => typeof error === 'object' && error !== null && 'problem' in error;

function runnerError(failure: unknown, body: string | undefined, socket: string): RunnerError {
  if (!isCockpitError(failure)) return new RunnerError(String(failure), null);
  const error = failure;
  if (error.problem === 'not-found' || error.problem === 'disconnected') {
    return new RunnerError(
      `The task runner is not running or not reachable: nothing answers on ${socket} (systemctl status tessia-task-runner.socket).`,
      null,
    );
  }
  if (error.problem === 'access-denied') {
    return new RunnerError(
      `Not permitted to reach the task runner on ${socket}: turn on administrative access, or be a member of tessia-task-runner-admin.`,
      null,
    );
  }
  if (error.problem !== null) return new RunnerError(`The task runner could not be reached: ${error.message}`, null);
  const answer = body === undefined ? null : parseLine(body);
  const detail = typeof answer?.['detail'] === 'string' ? answer['detail'] : (error.reason ?? error.message);
  const code = typeof answer?.['code'] === 'string' ? answer['code'] : null;
  return new RunnerError(detail, error.status ?? null, code);
}

/** How long a request may go unanswered (the bridge has no timeout of its own); a start waits for systemd's job. */
const TIMEOUT_MS = { read: 15_000, write: 90_000 };

export interface Stream {
  close(): void;
}

export class RunnerClient {
  private readonly http: CockpitHttpClient;

  constructor(readonly socket: string = runnerSocket()) {
    this.http = cockpit.http(socket, { superuser: 'try' });
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path).then((answer) => answer.body);
  }

  /** A page of a list, and the path of the next one (its Link header), if any. */
  getPage<T>(path: string): Promise<{ items: T[]; next: string | null }> {
    return this.call<T[]>('GET', path).then((answer) => {
      // Header names as the runner wrote them (Link): compared without case, as HTTP's are.
      const link = Object.entries(answer.headers).find(([name]) => name.toLowerCase() === 'link')?.[1];
      return { items: answer.body, next: nextPage(link) };
    });
  }

  post<T>(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.call<T>('POST', path, body, headers).then((answer) => answer.body);
  }

  delete<T>(path: string): Promise<T> {
    return this.call<T>('DELETE', path).then((answer) => answer.body);
  }

  private call<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ body: T; headers: Record<string, string> }> {
    return new Promise((resolve, reject) => {
      let headers: Record<string, string> = {};
      const request = this.http.request({
        method,
        path,
        body: body === undefined ? '' : JSON.stringify(body),
        headers: { ...extraHeaders, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      });
      request.response((_status, received) => {
        headers = received;
      });
      const timer = setTimeout(() => {
        request.close('timeout');
        reject(new RunnerError(`The task runner did not answer within ${timeoutOf(method) / 1000} s.`, null));
      }, timeoutOf(method));
      request.then(
        (text) => {
          clearTimeout(timer);
          try {
            resolve({ body: (text === '' ? null : JSON.parse(text)) as T, headers });
          } catch {
            reject(new RunnerError(`The answer on ${this.socket} is not the runner's (not JSON).`, null));
          }
        },
        () => undefined,
      );
      request.catch((error: unknown, text) => {
        clearTimeout(timer);
        reject(runnerError(error, text, this.socket));
      });
    });
  }

  /**
   * Follows a newline-delimited JSON stream: each object as it comes, then `ended` (with what cut it
   * short, if anything). close() lets it go.
   */
  follow(path: string, onObject: (object: Record<string, unknown>) => void, ended: (error: RunnerError | null) => void): Stream {
    const request = this.http.request({ method: 'GET', path, body: '' });
    let closed = false;
    request.stream((data) => {
      const { lines, used } = completeLines(data);
      for (const line of lines) {
        const object = parseLine(line);
        if (object && !closed) onObject(object);
      }
      return used;
    });
    request.then(
      () => {
        if (!closed) ended(null);
      },
      () => undefined,
    );
    request.catch((error: unknown, text) => {
      if (!closed) ended(runnerError(error, text, this.socket));
    });
    return {
      close: () => {
        closed = true;
        request.close();
      },
    };
  }
}

const timeoutOf = (method: string) => (method === 'GET' ? TIMEOUT_MS.read : TIMEOUT_MS.write);
