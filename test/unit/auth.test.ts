import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Server } from 'node:net';
import { describe, it } from 'node:test';
import type { Request, Response } from 'express';
import { authenticate, authorize, type AuthOptions, type Identity } from '../../src/api/auth.js';
import { HttpError } from '../../src/api/errors.js';
import { acceptsUnixPeers } from '../../src/api/unix-peers.js';
import { statusOf } from '../../src/error-codes.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const CONTROL_TOKEN = 'c0ntrol-t0ken-7f3a9b';
const VIEWER_TOKEN = 'viewer-t0ken-2e8d41';
const TOKENS: AuthOptions['tokens'] = [
  { name: 'mesh-control', sha256: sha256(CONTROL_TOKEN), scope: 'write' },
  { name: 'dashboard', sha256: sha256(VIEWER_TOKEN), scope: 'read' },
];
const REALM = 'Bearer realm="tessia-task-runner"';

interface FakeSocket {
  encrypted?: boolean;
  authorized?: boolean;
  getPeerCertificate?: () => { subject?: { CN?: string | string[] } };
}

interface Call {
  request: Request;
  /** Response headers set, by lower-case name. */
  headers: Record<string, string>;
  /** What the middleware passed to next(): undefined when it let the request through. */
  error: unknown;
  nextCalls: number;
}

interface RequestParts {
  authorization?: string;
  method?: string;
  socket?: FakeSocket;
  identity?: Identity;
}

/** Runs a middleware on a minimal request and response, as express would. */
function run(
  middleware: (request: Request, response: Response, next: (error?: unknown) => void) => void,
  { authorization, method = 'GET', socket = {}, identity }: RequestParts = {},
): Call {
  const request = {
    method,
    socket,
    identity,
    get: (name: string) => (name.toLowerCase() === 'authorization' ? authorization : undefined),
  } as unknown as Request;
  const headers: Record<string, string> = {};
  const response = {
    set(name: string, value: string) {
      headers[name.toLowerCase()] = value;
      return this;
    },
  } as unknown as Response;
  const call: Call = { request, headers, error: undefined, nextCalls: 0 };
  middleware(request, response, (error?: unknown) => {
    call.nextCalls += 1;
    call.error = error;
  });
  assert.equal(call.nextCalls, 1, 'the middleware must call next exactly once');
  return call;
}

function assertHttpError(error: unknown, status: number, code: string, message?: RegExp): void {
  assert.ok(error instanceof HttpError, `expected an HttpError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.equal(statusOf(error.code), status);
  if (message) assert.match(error.message, message);
}

function assertUnauthorized(call: Call, message?: RegExp): void {
  assertHttpError(call.error, 401, 'UNAUTHENTICATED', message);
  assert.equal(call.headers['www-authenticate'], REALM);
  assert.equal(call.request.identity, undefined);
}

const verifiedClient = (cn: string | string[] | undefined): FakeSocket => ({
  encrypted: true,
  authorized: true,
  getPeerCertificate: () => ({ subject: cn === undefined ? {} : { CN: cn } }),
});

/** The defaults: nothing for anonymous callers, everything for the Unix socket's. */
const DEFAULTS = { anonymous: 'none', unixSocket: 'write' } as const;

/** A connection accepted by a Unix-socket listener. */
function unixPeer(): FakeSocket {
  const socket = {};
  acceptsUnixPeers(new Server()).emit('connection', socket);
  return socket;
}

describe('authenticate callers who show nothing', () => {
  it('refuses an anonymous caller by default, and says that nothing is configured.', () => {
    assertUnauthorized(run(authenticate({ tokens: [], ...DEFAULTS })), /none is configured/);
  });

  it('lets anonymous callers in with the scope auth.anonymous gives them.', () => {
    for (const scope of ['read', 'write'] as const) {
      const call = run(authenticate({ tokens: TOKENS, ...DEFAULTS, anonymous: scope }));
      assert.equal(call.error, undefined);
      assert.deepEqual(call.request.identity, { name: 'anonymous', scope });
    }
  });

  it('lets a caller on the Unix socket in as unix-socket with auth.unixSocket, tokens configured or not.', () => {
    for (const tokens of [[], TOKENS]) {
      const call = run(authenticate({ tokens, ...DEFAULTS }), { socket: unixPeer() });
      assert.equal(call.error, undefined);
      assert.deepEqual(call.request.identity, { name: 'unix-socket', scope: 'write' });
    }
    const reader = run(authenticate({ tokens: [], ...DEFAULTS, unixSocket: 'read' }), { socket: unixPeer() });
    assert.deepEqual(reader.request.identity, { name: 'unix-socket', scope: 'read' });
    assertUnauthorized(run(authenticate({ tokens: [], ...DEFAULTS, unixSocket: 'none' }), { socket: unixPeer() }));
  });

  it('does not take a connection without a remote address for a Unix peer (a TCP client that hung up has none).', () => {
    assertUnauthorized(run(authenticate({ tokens: [], ...DEFAULTS }), { socket: { remoteAddress: undefined } as FakeSocket }));
  });

  it('takes a token over the Unix socket for what the token is.', () => {
    const call = run(authenticate({ tokens: TOKENS, ...DEFAULTS }), { socket: unixPeer(), authorization: `Bearer ${VIEWER_TOKEN}` });
    assert.deepEqual(call.request.identity, { name: 'token:dashboard', scope: 'read' });
  });
});

describe('authenticate with bearer tokens', () => {
  const middleware = authenticate({ tokens: TOKENS, ...DEFAULTS });

  it('refuses a request without an Authorization header with 401 and WWW-Authenticate.', () => {
    assertUnauthorized(run(middleware), /authentication required/);
  });

  it('refuses a malformed Authorization header with 401 and WWW-Authenticate.', () => {
    const headers = [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      'Bearer ',
      `Bearer ${CONTROL_TOKEN} extra`,
      `Bearer ${'a'.repeat(513)}`,
      CONTROL_TOKEN,
    ];
    for (const authorization of headers) {
      const call = run(middleware, { authorization });
      assertUnauthorized(call, /malformed Authorization header/);
    }
  });

  it('refuses an unknown token with 401 and WWW-Authenticate.', () => {
    assertUnauthorized(run(middleware, { authorization: 'Bearer not-a-configured-token' }), /unknown token/);
  });

  it('refuses the SHA-256 of a token shown in place of the token.', () => {
    assertUnauthorized(run(middleware, { authorization: `Bearer ${sha256(CONTROL_TOKEN)}` }), /unknown token/);
  });

  it('identifies the holder of a configured token as token:<name> with its scope.', () => {
    const control = run(middleware, { authorization: `Bearer ${CONTROL_TOKEN}` });
    assert.equal(control.error, undefined);
    assert.deepEqual(control.request.identity, { name: 'token:mesh-control', scope: 'write' });
    const viewer = run(middleware, { authorization: `Bearer ${VIEWER_TOKEN}` });
    assert.equal(viewer.error, undefined);
    assert.deepEqual(viewer.request.identity, { name: 'token:dashboard', scope: 'read' });
  });

  it('sets no WWW-Authenticate header on a request it lets through.', () => {
    const call = run(middleware, { authorization: `Bearer ${CONTROL_TOKEN}` });
    assert.equal(call.error, undefined);
    assert.deepEqual(call.headers, {});
  });

  it('ignores a client certificate when mutual TLS is not configured.', () => {
    const call = run(middleware, { socket: verifiedClient('mesh-control') });
    assertUnauthorized(call, /authentication required/);
  });
});

describe('authenticate with client certificates', () => {
  const middleware = authenticate({ tokens: TOKENS, clientCertificates: { scope: 'read' }, ...DEFAULTS });

  it('identifies a client with a verified certificate as certificate:<CN> with the configured scope.', () => {
    const call = run(middleware, { socket: verifiedClient('control.mesh.example') });
    assert.equal(call.error, undefined);
    assert.deepEqual(call.request.identity, { name: 'certificate:control.mesh.example', scope: 'read' });
  });

  it('takes the first CN of a subject that has several.', () => {
    const call = run(middleware, { socket: verifiedClient(['first.example', 'second.example']) });
    assert.deepEqual(call.request.identity, { name: 'certificate:first.example', scope: 'read' });
  });

  it('names a verified certificate without a CN certificate:unnamed.', () => {
    const call = run(middleware, { socket: verifiedClient(undefined) });
    assert.deepEqual(call.request.identity, { name: 'certificate:unnamed', scope: 'read' });
  });

  it('does not take a certificate the TLS layer did not authorize.', () => {
    const socket = { ...verifiedClient('intruder'), authorized: false };
    assertUnauthorized(run(middleware, { socket }), /authentication required/);
  });

  it('still accepts a token from a client without a verified certificate.', () => {
    const socket = { ...verifiedClient('intruder'), authorized: false };
    const call = run(middleware, { socket, authorization: `Bearer ${CONTROL_TOKEN}` });
    assert.equal(call.error, undefined);
    assert.deepEqual(call.request.identity, { name: 'token:mesh-control', scope: 'write' });
  });

  it('requires credentials when only mutual TLS is configured.', () => {
    const middleware = authenticate({ tokens: [], clientCertificates: { scope: 'write' }, ...DEFAULTS });
    const call = run(middleware, { socket: { encrypted: false } });
    assertUnauthorized(call, /authentication required/);
  });
});

describe('authorize', () => {
  const reader: Identity = { name: 'token:dashboard', scope: 'read' };
  const writer: Identity = { name: 'token:mesh-control', scope: 'write' };

  it('lets a read scope GET and HEAD.', () => {
    for (const method of ['GET', 'HEAD']) assert.equal(run(authorize, { method, identity: reader }).error, undefined);
  });

  it('refuses a read scope everything that changes something with 403.', () => {
    for (const method of ['POST', 'DELETE', 'PUT', 'PATCH']) {
      const { error } = run(authorize, { method, identity: reader });
      assertHttpError(error, 403, 'FORBIDDEN', /token:dashboard may only read/);
    }
  });

  it('lets a write scope read and change.', () => {
    for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
      assert.equal(run(authorize, { method, identity: writer }).error, undefined);
    }
  });

  it('refuses a request nobody authenticated with 401.', () => {
    assertHttpError(run(authorize, { method: 'GET' }).error, 401, 'UNAUTHENTICATED');
  });

  it('lets a read token read and refuses it a POST, from header to decision.', () => {
    const authorization = `Bearer ${VIEWER_TOKEN}`;
    const authenticated = run(authenticate({ tokens: TOKENS, ...DEFAULTS }), { method: 'POST', authorization });
    assert.equal(authenticated.error, undefined);
    const identity = authenticated.request.identity;
    assert.ok(identity);
    assertHttpError(run(authorize, { method: 'POST', identity }).error, 403, 'FORBIDDEN');
    assert.equal(run(authorize, { method: 'GET', identity }).error, undefined);
  });
});
