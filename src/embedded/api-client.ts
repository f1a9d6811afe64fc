import { request as httpRequest } from 'node:http';

/** The runner's API as the tests and the benchmarks call it (JSON in; JSON, or the text when it is not, out). */
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A fetch() that goes through the Unix socket at `socketPath` (fetch itself cannot). */
function fetchOverSocket(socketPath: string): typeof fetch {
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : input);
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const request = httpRequest(
        { socketPath, path: `${url.pathname}${url.search}`, method: init.method ?? 'GET', headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const answer = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              for (const each of ([] as (string | undefined)[]).concat(value)) if (each !== undefined) answer.append(name, each);
            }
            const status = response.statusCode ?? 0;
            // A Response with a null-body status must have no body.
            const body = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
            resolve(new Response(body, { status, headers: answer }));
          });
        },
      );
      request.on('error', reject);
      request.end(typeof init.body === 'string' ? init.body : undefined);
    });
}

/**
 * A small JSON client for the runner's API, at `baseUrl`, or through the Unix socket `socketPath`
 * (then `baseUrl` gives only the Host header).
 */
export function client(baseUrl: string, { socketPath }: { socketPath?: string } = {}) {
  const send = socketPath === undefined ? fetch : fetchOverSocket(socketPath);
  const request = async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    raw?: string,
    contentType = 'application/json',
  ): Promise<Reply<T>> => {
    const init: RequestInit = { method };
    if (raw !== undefined) {
      init.body = raw;
      init.headers = { 'content-type': contentType };
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const response = await send(baseUrl + path, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
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
