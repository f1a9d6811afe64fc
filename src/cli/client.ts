/**
 * The HTTP client of the `task` commands: plain HTTP, HTTPS with a CA and a client certificate
 * (mutual TLS), a bearer token, or a Unix socket — the same settings the service accepts.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ClientSettings {
  url: string;
  token?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  socket?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function open(settings: ClientSettings, method: string, path: string, body?: unknown): Promise<IncomingMessage> {
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
    const request =
      url.protocol === 'https:'
        ? httpsRequest({
            ...options,
            ...(settings.cacert ? { ca: readFileSync(settings.cacert) } : {}),
            ...(settings.cert ? { cert: readFileSync(settings.cert) } : {}),
            ...(settings.key ? { key: readFileSync(settings.key) } : {}),
          }, resolve)
        : httpRequest(options, resolve);
    request.on('error', reject);
    request.end(payload);
  });
}

export async function call<T>(settings: ClientSettings, method: string, path: string, body?: unknown): Promise<T> {
  const response = await open(settings, method, path, body);
  let text = '';
  response.setEncoding('utf8');
  for await (const chunk of response) text += chunk;
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  if ((response.statusCode ?? 0) >= 400) {
    const detail = (parsed as { detail?: string })?.detail ?? text;
    throw new ApiError(response.statusCode ?? 0, detail);
  }
  return parsed as T;
}
