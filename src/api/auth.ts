/**
 * Who is calling, and may they: a client certificate checked by TLS (mutual TLS), or a bearer token
 * compared by its SHA-256 in constant time, each with a scope — read (list, query, logs) or write
 * (also start, stop, delete). A caller on the Unix socket, whose file mode already decided who may
 * connect, gets `auth.unixSocket`; any other caller without credentials gets `auth.anonymous`
 * (none by default: 401).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpError } from './errors.js';
import { isUnixPeer } from './unix-peers.js';

export type Scope = 'read' | 'write';
/** What a caller who shows nothing may do. */
export type AnonymousScope = Scope | 'none';

export interface Identity {
  /** certificate:<subject CN>, token:<name>, unix-socket, or anonymous. */
  name: string;
  scope: Scope;
}

export interface AuthOptions {
  tokens: { name: string; sha256: string; scope: Scope }[];
  /** Mutual TLS is on: a verified client certificate authenticates with this scope. */
  clientCertificates?: { scope: Scope };
  /** Callers on a Unix socket without a token. */
  unixSocket: AnonymousScope;
  /** Every other caller without a certificate or a token. */
  anonymous: AnonymousScope;
}

declare module 'express-serve-static-core' {
  interface Request {
    identity?: Identity;
  }
}

type PreparedTokens = (AuthOptions['tokens'][number] & { digest: Buffer })[];

/** `source`: the options, or a function that returns the current ones (a reload replaces them). */
export function authenticate(source: AuthOptions | (() => AuthOptions)): RequestHandler {
  const current = typeof source === 'function' ? source : () => source;
  // The digests as buffers, made again only when the options are replaced.
  const prepared = new WeakMap<AuthOptions, PreparedTokens>();
  return (request: Request, response: Response, next: NextFunction) => {
    const options = current();
    let tokens = prepared.get(options);
    if (!tokens) {
      tokens = options.tokens.map((token) => ({ ...token, digest: Buffer.from(token.sha256, 'hex') }));
      prepared.set(options, tokens);
    }
    const socket = request.socket;
    if (options.clientCertificates && isTls(socket) && socket.authorized) {
      const subject = socket.getPeerCertificate().subject;
      const cn = Array.isArray(subject.CN) ? subject.CN[0] : subject.CN;
      request.identity = { name: `certificate:${cn ?? 'unnamed'}`, scope: options.clientCertificates.scope };
      next();
      return;
    }
    const header = request.get('authorization');
    if (header !== undefined) {
      // The scheme is case-insensitive (RFC 9110, 11.1).
      const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
      if (!match?.[1]) {
        next(unauthorized(response, 'malformed Authorization header (expected: Bearer <token>)'));
        return;
      }
      const digest = createHash('sha256').update(match[1]).digest();
      // Compare with every token, so the time taken tells nothing about which one came close.
      let found: PreparedTokens[number] | undefined;
      for (const token of tokens) if (timingSafeEqual(token.digest, digest)) found ??= token;
      if (!found) {
        next(unauthorized(response, 'unknown token'));
        return;
      }
      request.identity = { name: `token:${found.name}`, scope: found.scope };
      next();
      return;
    }
    const [name, scope] = isUnixPeer(socket) ? (['unix-socket', options.unixSocket] as const) : (['anonymous', options.anonymous] as const);
    if (scope === 'none') {
      next(unauthorized(response, `authentication required: a client certificate or a bearer token (${ways(options)})`));
      return;
    }
    request.identity = { name, scope };
    next();
  };
}

/** What the runner would accept, for the 401's detail. */
function ways(options: AuthOptions): string {
  if (options.tokens.length > 0 || options.clientCertificates) return 'anonymous callers may do nothing here';
  return 'none is configured: see auth.tokens and tls.clientCa, or use the Unix socket';
}

function isTls(socket: Socket): socket is TLSSocket {
  return 'encrypted' in socket && socket.encrypted === true;
}

/** Reads need `read`; everything that changes something needs `write`. */
export const authorize: RequestHandler = (request, _response, next) => {
  const needed: Scope = request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
  const identity = request.identity;
  if (!identity) {
    next(new HttpError('UNAUTHENTICATED', 'authentication required'));
    return;
  }
  if (needed === 'write' && identity.scope !== 'write') {
    next(new HttpError('FORBIDDEN', `${identity.name} may only read (scope "read")`));
    return;
  }
  next();
};

function unauthorized(response: Response, detail: string): HttpError {
  response.set('WWW-Authenticate', 'Bearer realm="tessia-task-runner"');
  return new HttpError('UNAUTHENTICATED', detail);
}
