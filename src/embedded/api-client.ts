import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';

/** The runner's API as the tests and the benchmarks call it (JSON in; JSON, or the text when it is not, out). */
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** An answer read whole: what the client makes its Reply of. */
interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

interface Sent {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

type Transport = (url: URL, sent: Sent) => Promise<Answer>;

const byFetch: Transport = async (url, { method, headers, body }) => {
  const response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  return { status: response.status, headers: response.headers, text: await response.text() };
};

/** The same request over node:http, through `agent`, or the Unix socket `socketPath`. */
function byNodeHttp(target: { agent: Agent } | { socketPath: string }): Transport {
  return (url, { method, headers, body }) =>
    new Promise((resolve, reject) => {
      // A URL's IPv6 host is bracketed; node:http wants the address alone.
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const where = 'agent' in target ? { host, port: url.port, agent: target.agent } : { socketPath: target.socketPath };
      const request = httpRequest({ ...where, path: `${url.pathname}${url.search}`, method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: headersOf(response), text: Buffer.concat(chunks).toString() }),
        );
      });
      request.on('error', reject);
      request.end(body);
    });
}

function headersOf(response: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    for (const each of ([] as (string | undefined)[]).concat(value)) if (each !== undefined) headers.append(name, each);
  }
  return headers;
}

/** Under the runner's keepAliveTimeout (5 s, src/listener.ts): an idle kept-alive connection is closed here first. */
const FREE_SOCKET_TIMEOUT_MS = 4000;

/**
 * A small JSON client for the runner's API, at `baseUrl`, or through the Unix socket `socketPath`
 * (fetch cannot; then `baseUrl` gives only the Host header). `keepAlive`: node:http with its
 * connections kept alive instead of fetch, plain http over TCP only — the client of the starts,
 * stops and ab benchmarks: fetch (undici) costs the client time the bare side of a benchmark, a
 * D-Bus call, does not pay (docs/benchmarks.md, the seventh session of round two).
 */
export function client(baseUrl: string, { socketPath, keepAlive = false }: { socketPath?: string; keepAlive?: boolean } = {}) {
  if (keepAlive && (socketPath !== undefined || !baseUrl.startsWith('http:'))) {
    throw new Error(`the kept-alive client speaks plain http over TCP only, not ${socketPath ?? baseUrl}`);
  }
  const send: Transport =
    socketPath !== undefined
      ? byNodeHttp({ socketPath })
      : keepAlive
        ? byNodeHttp({ agent: new Agent({ keepAlive: true, timeout: FREE_SOCKET_TIMEOUT_MS }) })
        : byFetch;
  const request = async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    raw?: string,
    contentType = 'application/json',
  ): Promise<Reply<T>> => {
    const sent: Sent = { method, headers: {} };
    if (raw !== undefined) {
      sent.body = raw;
      sent.headers = { 'content-type': contentType };
    } else if (body !== undefined) {
      sent.body = JSON.stringify(body);
      sent.headers = { 'content-type': 'application/json' };
    }
    const { status, headers, text } = await send(new URL(baseUrl + path), sent);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status, body: parsed as T, headers };
  };
  /** Every item of a paged list (GET /v1/tasks): the path, then each page its Link rel="next" names. */
  const getAll = async <T = any>(path: string): Promise<T[]> => {
    const items: T[] = [];
    for (let next: string | undefined = path; next !== undefined;) {
      const page: Reply<T[]> = await request<T[]>('GET', next);
      if (page.status !== 200) throw new Error(`GET ${next}: ${page.status} ${JSON.stringify(page.body)}`);
      items.push(...page.body);
      next = /<([^>]*)>;\s*rel="next"/.exec(page.headers.get('link') ?? '')?.[1];
    }
    return items;
  };
  return {
    get: <T = any>(path: string) => request<T>('GET', path),
    getAll,
    post: <T = any>(path: string, body?: unknown) => request<T>('POST', path, body),
    /** A body as it is, sent as JSON unless `contentType` says otherwise. */
    postRaw: <T = any>(path: string, raw: string, contentType?: string) => request<T>('POST', path, undefined, raw, contentType),
    delete: <T = any>(path: string) => request<T>('DELETE', path),
  };
}

export type Api = ReturnType<typeof client>;
