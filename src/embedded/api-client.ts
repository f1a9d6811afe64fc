/** The runner's API as the tests and the benchmarks call it (JSON in; JSON, or the text when it is not, out). */
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small JSON client for the runner's API. */
export function client(baseUrl: string) {
  const request = async <T = any>(method: string, path: string, body?: unknown, raw?: string, contentType = 'application/json'): Promise<Reply<T>> => {
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
  return {
    get: <T = any>(path: string) => request<T>('GET', path),
    post: <T = any>(path: string, body?: unknown) => request<T>('POST', path, body),
    /** A body as it is, sent as JSON unless `contentType` says otherwise. */
    postRaw: <T = any>(path: string, raw: string, contentType?: string) => request<T>('POST', path, undefined, raw, contentType),
    delete: <T = any>(path: string) => request<T>('DELETE', path),
  };
}

export type Api = ReturnType<typeof client>;
