/**
 * What keeps browsers from driving the runner (docs/design: "Browsers: never"), checked before
 * anything else looks at a request, so that a refused request changes nothing:
 *
 * - **Host**: a request must name the runner by one of its names, or DNS rebinding lets any web page
 *   read the answers (its own name resolves to 127.0.0.1). Not checked over the Unix socket, which
 *   no browser reaches.
 * - **Origin**: browsers say where a request comes from; only origins the config allows may call.
 * - **Content-Type**: a body must be `application/json`. A web page can send a cross-origin
 *   `text/plain` or form POST without asking first (a CORS "simple request"); JSON it cannot.
 */
import { hostname } from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { RequestHandler } from 'express';
import { HttpError } from './errors.js';
import { isUnixPeer } from './unix-peers.js';

export interface RequestPolicy {
  /** Lower-case host names and IP addresses (IPv6 without brackets) the runner answers to. */
  hosts: ReadonlySet<string>;
  /** Origins (`scheme://host[:port]`, as URL.origin spells them) whose browsers may call. */
  origins: ReadonlySet<string>;
}

/** Where the policy comes from: read at each request, so a reload applies to the next one. */
export type PolicySource = () => RequestPolicy;

/** The names every runner answers to, with the listen addresses and the config's `allowedHosts`. */
export function requestPolicy(
  listenHosts: readonly string[],
  allowedHosts: readonly string[],
  allowedOrigins: readonly string[],
): RequestPolicy {
  const names = ['localhost', '127.0.0.1', '::1', hostname(), ...listenHosts, ...allowedHosts].map(normalizeHost);
  return {
    hosts: new Set(names.filter((name) => name !== '' && name !== '0.0.0.0' && name !== '::')),
    origins: new Set(allowedOrigins.map(normalizeOrigin).filter((origin): origin is string => origin !== undefined)),
  };
}

/** `[::1]` → `::1`, `Runner.Example.` → `runner.example`, `::ffff:127.0.0.1` → `127.0.0.1`. */
export function normalizeHost(name: string): string {
  const bare = name
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  return bare.startsWith('::ffff:') && isIP(bare.slice(7)) === 4 ? bare.slice(7) : bare;
}

/** The host part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), or undefined when malformed. */
export function hostOfHeader(header: string): string | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return match?.[1] === undefined ? undefined : normalizeHost(match[1]);
}

/** `https://Mesh.Example:443/` → `https://mesh.example`; undefined for anything that is not an http(s) origin. */
export function normalizeOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/** Printable and short, for a detail that names what the client sent. */
function quoted(value: string): string {
  const flat = value.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(flat.length > 100 ? `${flat.slice(0, 100)}…` : flat);
}

/**
 * Refuses a request whose Host is not a name of the runner (421, DNS rebinding). Also accepted: the
 * IP address the client connected to, so a runner listening on 0.0.0.0 answers at each of its
 * addresses. No Host at all (HTTP/1.0) is no browser's request; node refuses HTTP/1.1 without one.
 */
export function checkHost(policy: PolicySource): RequestHandler {
  return (request, _response, next) => {
    const socket = request.socket;
    const header = request.headers.host;
    // Browsers cannot reach a Unix socket.
    if (isUnixPeer(socket) || header === undefined) {
      next();
      return;
    }
    const host = hostOfHeader(header);
    const local = socket.localAddress === undefined ? undefined : normalizeHost(socket.localAddress);
    if (host !== undefined && (policy().hosts.has(host) || (isIP(host) !== 0 && host === local))) {
      next();
      return;
    }
    next(
      new HttpError(
        'HOST_NOT_ALLOWED',
        `the Host ${quoted(header)} is not a name of this runner; if clients reach it by that name, add the name to allowedHosts in its config`,
      ),
    );
  };
}

const PREFLIGHT_HEADERS = {
  'Access-Control-Allow-Methods': 'GET, POST, DELETE',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Last-Event-ID',
  'Access-Control-Max-Age': '600',
};

/**
 * Refuses a request from a browser whose origin the config does not list (403); the listed ones
 * get what CORS needs: a preflight answer, and Access-Control-Allow-Origin on every answer.
 * Cookies play no part (credentials are tokens or client certificates), so none are allowed.
 */
export function checkOrigin(policy: PolicySource): RequestHandler {
  return (request, response, next) => {
    const header = request.headers.origin;
    if (header === undefined) {
      next();
      return;
    }
    const origin = normalizeOrigin(header);
    if (origin === undefined || !policy().origins.has(origin)) {
      next(
        new HttpError(
          'ORIGIN_NOT_ALLOWED',
          `requests from the origin ${quoted(header)} are refused; allowedOrigins in the runner's config lists the ones that may call`,
        ),
      );
      return;
    }
    response.vary('Origin');
    response.set({ 'Access-Control-Allow-Origin': header, 'Access-Control-Expose-Headers': 'Link, Location, Retry-After' });
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      response.set(PREFLIGHT_HEADERS).status(204).end();
      return;
    }
    next();
  };
}

const JSON_MEDIA_TYPE = /^application\/json\s*(;\s*charset\s*=\s*("[^"]*"|[^\s;"]*)\s*)?$/i;

/** Whether the request has a body: a non-zero Content-Length, or a Transfer-Encoding (chunked). */
function hasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length.trim() !== '0';
}

/**
 * A request with a body must say it is JSON (`application/json`, optionally with a charset, which
 * the parser then checks: 415 for anything but UTF-8). Bodiless requests (a stop, a delete) need no type.
 */
export const jsonBodiesOnly: RequestHandler = (request, _response, next) => {
  if (!hasBody(request.headers)) {
    next();
    return;
  }
  const type = request.headers['content-type'];
  if (type === undefined || !JSON_MEDIA_TYPE.test(type.trim())) {
    const said = type === undefined ? 'no Content-Type' : `Content-Type ${quoted(type)}`;
    next(
      new HttpError('UNSUPPORTED_MEDIA_TYPE', `a request body must be JSON, sent as Content-Type: application/json (this one has ${said})`),
    );
    return;
  }
  next();
};
