/** The runner's API as the tests and the benchmarks call it (JSON in; JSON, or the text when it is not, out). */
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small JSON client for the runner's API. */
export function client(baseUrl: string) {
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
    const response = await fetch(baseUrl + path, init);
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
