/**
 * The HTTP client of the `task` commands: plain HTTP, HTTPS with a CA and a client certificate
 * (mutual TLS), a bearer token, or a Unix socket — the same settings the service accepts. Every
 * exchange has a time budget (--timeout), and busy/unavailable answers are retried where a retry
 * cannot do a thing twice (see decideRetry).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../error-codes.js';

export interface ClientSettings {
  url: string;
  /** The budget of one exchange: connecting, retries and the answer (a log stream: until it starts). */
  timeoutSeconds: number;
  token?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  socket?: string;
}

/** An error the runner reported: its status, its `detail` and its `code`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** No usable answer: a timeout, or something that is not the runner's JSON (a proxy's error page). */
export class UnavailableError extends Error {}

/** At most this long between two attempts, whatever Retry-After asks. */
export const MAX_RETRY_WAIT_SECONDS = 30;
/** At least this long, so that `Retry-After: 0` cannot make a busy loop of the retries. */
const MIN_RETRY_WAIT_SECONDS = 1;
/** Codes that say the runner did nothing, so that even a POST or a DELETE may be sent again. */
const NOTHING_DONE_CODES: ReadonlySet<string> = new Set<ErrorCode>(['TOO_MANY_TASKS', 'MACHINE_BUSY', 'SHUTTING_DOWN']);
/** How much of an unexpected answer to show. */
const EXCERPT_LENGTH = 120;

class Deadline {
  private readonly at: number;
  constructor(readonly seconds: number) {
    this.at = Date.now() + seconds * 1000;
  }
  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }
}

interface Target {
  settings: ClientSettings;
  method: string;
  path: string;
  body?: unknown;
}

/** The request's URL for messages, with the socket it goes through when there is one. */
function describeTarget(settings: ClientSettings, path: string): string {
  const url = new URL(path, settings.url);
  url.username = '';
  url.password = '';
  return settings.socket ? `${url.href} (via ${settings.socket})` : url.href;
}

/** One line of printable text from what a server sent: no control characters, at most `length` long. */
export function printable(text: string, length = EXCERPT_LENGTH): string {
  const flat = text.replace(/[\p{Cc}\p{Cf}\s]+/gu, ' ').trim();
  const characters = Array.from(flat);
  return characters.length > length ? `${characters.slice(0, length).join('')}…` : flat;
}

function timeoutError(target: Target, deadline: Deadline): UnavailableError {
  return new UnavailableError(`no answer from ${describeTarget(target.settings, target.path)} within --timeout ${deadline.seconds} s`);
}

function notTheRunner(target: Target, status: number, what: string, text: string, suffix = ''): UnavailableError {
  const excerpt = printable(text);
  return new UnavailableError(
    `${describeTarget(target.settings, target.path)} answered ${status} with ${what} that is not the runner's JSON${excerpt ? `: "${excerpt}"` : ' (empty)'}${suffix}`,
  );
}

interface Attempt {
  response: IncomingMessage;
  /** Ends the deadline's hold on the exchange; until then, running out of time destroys it. */
  disarm: () => void;
}

function createRequest(
  settings: ClientSettings,
  url: URL,
  options: RequestOptions,
  onResponse: (response: IncomingMessage) => void,
): ClientRequest {
  if (url.protocol !== 'https:') return httpRequest(options, onResponse);
  return httpsRequest(
    {
      ...options,
      ...(settings.cacert ? { ca: readFileSync(settings.cacert) } : {}),
      ...(settings.cert ? { cert: readFileSync(settings.cert) } : {}),
      ...(settings.key ? { key: readFileSync(settings.key) } : {}),
    },
    onResponse,
  );
}

/** Sends the request once; the deadline covers connecting and whatever is read before disarm(). */
function send(target: Target, deadline: Deadline): Promise<Attempt> {
  const { settings, method, path, body } = target;
  const url = new URL(path, settings.url);
  const headers: Record<string, string> = { accept: 'application/x-ndjson, application/json' };
  if (settings.token) headers['authorization'] = `Bearer ${settings.token}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const options = {
    method,
    headers,
    path: `${url.pathname}${url.search}`,
    ...(settings.socket ? { socketPath: settings.socket } : { host: url.hostname, port: url.port }),
  };
  return new Promise((resolve, reject) => {
    let response: IncomingMessage | undefined;
    const request = createRequest(settings, url, options, (answer) => {
      response = answer;
      resolve({ response: answer, disarm: () => clearTimeout(timer) });
    });
    const timer = setTimeout(() => (response ?? request).destroy(timeoutError(target, deadline)), deadline.remainingMs());
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(payload);
  });
}

async function readText(response: IncomingMessage): Promise<string> {
  let text = '';
  response.setEncoding('utf8');
  for await (const chunk of response as AsyncIterable<string>) text += chunk;
  return text;
}

type ParsedJson = { ok: true; value: unknown } | { ok: false };

function parseJson(text: string): ParsedJson {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Seconds to wait as `Retry-After` asks (delay-seconds or an HTTP date), or undefined when it does not. */
export function retryAfterSeconds(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  // An HTTP date starts with the day of the week; Date.parse alone would take "-3" for a year.
  const date = /^[A-Za-z]+,? /.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

/** A busy/unavailable answer may be retried only where sending the request again cannot do a thing twice. */
export function mayRetry(method: string, status: number, code: string | undefined): boolean {
  if (status !== 429 && status !== 503) return false;
  return method === 'GET' || (code !== undefined && NOTHING_DONE_CODES.has(code));
}

type RetryDecision = { retryInMs: number } | { giveUp: string };

/** Whether and when to send the request again after a failed answer; when not, why (for the message). */
function decideRetry(
  target: Target,
  status: number,
  code: string | undefined,
  retryAfter: string | undefined,
  deadline: Deadline,
  retries: number,
): RetryDecision {
  if (status !== 429 && status !== 503) return { giveUp: '' };
  if (!mayRetry(target.method, status, code)) return { giveUp: 'not retried: it may have taken effect' };
  const asked = retryAfterSeconds(retryAfter);
  if (asked === undefined) return { giveUp: retries === 0 ? 'not retried: no Retry-After' : gaveUp(retries, deadline) };
  const delay = Math.min(Math.max(asked, MIN_RETRY_WAIT_SECONDS), MAX_RETRY_WAIT_SECONDS) * 1000;
  if (delay < deadline.remainingMs()) return { retryInMs: delay };
  return {
    giveUp:
      retries === 0 ? `not retried: Retry-After ${retryAfter} does not fit in --timeout ${deadline.seconds} s` : gaveUp(retries, deadline),
  };
}

function gaveUp(retries: number, deadline: Deadline): string {
  return `gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'} within --timeout ${deadline.seconds} s`;
}

function errorOf(target: Target, status: number, text: string, parsed: ParsedJson, note: string): Error {
  const suffix = note ? ` (${note})` : '';
  if (!parsed.ok) return notTheRunner(target, status, 'a body', text, suffix);
  const { detail, code } = (parsed.value ?? {}) as { detail?: unknown; code?: unknown };
  const message = typeof detail === 'string' ? printable(detail, 1000) : printable(text);
  return new ApiError(status, `${message}${suffix}`, typeof code === 'string' ? code : undefined);
}

/**
 * Sends the request until it gets an answer below 400, retrying busy/unavailable answers as
 * decideRetry allows; the answer is returned with the deadline still armed.
 */
async function exchange(target: Target, deadline: Deadline): Promise<Attempt> {
  for (let retries = 0; ; retries++) {
    const attempt = await send(target, deadline);
    const status = attempt.response.statusCode ?? 0;
    if (status < 400) return attempt;
    let text: string;
    try {
      text = await readText(attempt.response);
    } finally {
      attempt.disarm();
    }
    const parsed = parseJson(text);
    const code = parsed.ok ? (parsed.value as { code?: unknown } | null)?.code : undefined;
    const decision = decideRetry(
      target,
      status,
      typeof code === 'string' ? code : undefined,
      attempt.response.headers['retry-after'],
      deadline,
      retries,
    );
    if ('giveUp' in decision) throw errorOf(target, status, text, parsed, decision.giveUp);
    await sleep(decision.retryInMs);
  }
}

/** A request whose answer is one JSON document, read within the deadline. */
export async function call<T>(settings: ClientSettings, method: string, path: string, body?: unknown): Promise<T> {
  return (await callWithHeaders(settings, method, path, body)).value as T;
}

async function callWithHeaders(
  settings: ClientSettings,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ value: unknown; response: IncomingMessage }> {
  const target = { settings, method, path, body };
  const deadline = new Deadline(settings.timeoutSeconds);
  const { response, disarm } = await exchange(target, deadline);
  let text: string;
  try {
    text = await readText(response);
  } finally {
    disarm();
  }
  const parsed = parseJson(text);
  if (!parsed.ok) throw notTheRunner(target, response.statusCode ?? 0, 'a body', text);
  return { value: parsed.value, response };
}

/** The target of `rel="next"` in a Link header (RFC 8288), as a path on the runner. */
export function nextPageOf(link: string | undefined, settings: ClientSettings): string | undefined {
  const match = link === undefined ? null : /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!match?.[1]) return undefined;
  const url = new URL(match[1], settings.url);
  // Only pages of the same runner: a Link elsewhere is not followed (the token would go with it).
  if (url.origin !== new URL(settings.url).origin) return undefined;
  return `${url.pathname}${url.search}`;
}

/** Every item of a paged list: GET the path, then each `rel="next"` page the runner links to. */
export async function callPages<T>(settings: ClientSettings, path: string): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  for (let next: string | undefined = path; next !== undefined && !seen.has(next);) {
    seen.add(next);
    const { value, response } = await callWithHeaders(settings, 'GET', next);
    if (!Array.isArray(value))
      throw notTheRunner({ settings, method: 'GET', path: next }, response.statusCode ?? 0, 'a body', JSON.stringify(value));
    items.push(...(value as T[]));
    const link = response.headers.link;
    next = nextPageOf(Array.isArray(link) ? link.join(', ') : link, settings);
  }
  return items;
}

/** A GET whose answer is a stream: the deadline covers connecting and the response headers only. */
export async function openStream(settings: ClientSettings, path: string): Promise<IncomingMessage> {
  const { response, disarm } = await exchange({ settings, method: 'GET', path }, new Deadline(settings.timeoutSeconds));
  disarm();
  return response;
}

/**
 * The NDJSON lines of a stream, parsed; a line that is not JSON means it is not the runner talking.
 * With `stallSeconds`, the stream must bring something at least that often.
 */
export async function* jsonLines(
  settings: ClientSettings,
  path: string,
  response: IncomingMessage,
  stallSeconds?: number,
): AsyncGenerator<Record<string, unknown>> {
  const parse = (line: string) => {
    const parsed = parseJson(line);
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) {
      throw notTheRunner({ settings, method: 'GET', path }, response.statusCode ?? 0, 'a line', line);
    }
    return parsed.value as Record<string, unknown>;
  };
  const stalled = () => new UnavailableError(`the stream from ${describeTarget(settings, path)} stalled for --timeout ${stallSeconds} s`);
  const watchdog = stallSeconds === undefined ? undefined : setTimeout(() => response.destroy(stalled()), stallSeconds * 1000);
  let partial = '';
  response.setEncoding('utf8');
  try {
    for await (const chunk of response as AsyncIterable<string>) {
      watchdog?.refresh();
      partial += chunk;
      let at: number;
      while ((at = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, at);
        partial = partial.slice(at + 1);
        if (line.trim()) yield parse(line);
      }
    }
  } finally {
    clearTimeout(watchdog);
  }
  if (partial.trim()) yield parse(partial);
}
