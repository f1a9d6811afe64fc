/**
 * The HTTP(S) listeners and their safety rules: HTTPS with the configured certificate (client
 * certificates checked against the CA for mutual TLS), tokens from the config and the token file,
 * and no listening off loopback without a guard — client certificates, or tokens over TLS — unless
 * the config says `insecure: true`; the same for the sockets systemd passes (socket activation).
 * A reload re-reads the tokens and the TLS material and applies them to the running listeners.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import { z } from 'zod';
import type { AuthOptions } from './api/auth.js';
import { acceptsUnixPeers } from './api/unix-peers.js';
import { ConfigError } from './config/load.js';
import { describeIssues, messageOf } from './errors.js';
import { TokenSchema, type Config } from './config/schema.js';

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').replace(/^::ffff:(?=\d+\.)/i, '');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

export async function loadAuth(config: Config): Promise<AuthOptions> {
  const tokens = [...config.auth.tokens];
  if (config.auth.tokenFile) {
    let document: unknown;
    try {
      document = parse(await readFile(config.auth.tokenFile, 'utf8'));
    } catch (error) {
      throw new ConfigError(`auth.tokenFile: cannot read ${config.auth.tokenFile}: ${messageOf(error)}`);
    }
    const parsed = z
      .array(TokenSchema)
      .max(10_000)
      .safeParse(document ?? []);
    if (!parsed.success) {
      throw new ConfigError(`auth.tokenFile ${config.auth.tokenFile}: ${describeIssues(parsed.error, '(top level)').join('; ')}`);
    }
    tokens.push(...parsed.data);
  }
  const names = new Set<string>();
  for (const token of tokens) {
    if (names.has(token.name)) throw new ConfigError(`auth: the token name "${token.name}" is used twice`);
    names.add(token.name);
  }
  return {
    tokens,
    ...(config.tls?.clientCa ? { clientCertificates: { scope: config.tls.clientScope } } : {}),
    anonymous: config.auth.anonymous,
    unixSocket: config.auth.unixSocket,
  };
}

/**
 * Why a listener off loopback would be an open door under this config, or undefined when someone
 * checks who calls. Only client certificates, or tokens over TLS, count: TLS alone makes every
 * caller anonymous with write scope, and tokens over plain HTTP cross the network readable.
 */
export function unguarded(config: Config, auth: AuthOptions): string | undefined {
  if (auth.anonymous !== 'none')
    return `with auth.anonymous: ${auth.anonymous} (every caller may ${auth.anonymous === 'write' ? 'run tasks' : 'read every task and its logs'})`;
  if (config.tls?.clientCa !== undefined) return undefined;
  if (auth.tokens.length > 0) return config.tls ? undefined : 'with tokens but without TLS (anyone on the way can read the tokens)';
  return config.tls
    ? 'with TLS but without client certificates (tls.clientCa) or tokens (every caller would be anonymous)'
    : 'without TLS or tokens';
}

/** Refuses an open door: off loopback, someone must check who is calling. `where` names the listener. */
export function assertSafeListener(host: string, config: Config, auth: AuthOptions, log: Logger, where = 'listen'): void {
  if (isLoopback(host)) return;
  const problem = unguarded(config, auth);
  if (problem === undefined) return;
  if (!config.insecure) {
    throw new ConfigError(
      `${where}: refusing to listen on ${host}, off loopback, ${problem}: configure tls with tls.clientCa (mutual TLS), or auth.tokens with tls, or set "insecure: true" to accept that anyone who reaches the port can run tasks`,
    );
  }
  log.warn({ host }, `INSECURE: listening off loopback ${problem} (insecure: true): anyone who reaches the port can run tasks`);
}

/**
 * The address a listening server is bound to: its IP for TCP, undefined for a Unix socket (which
 * is local: its file mode guards it). For a socket systemd passed, this is how the runner learns it.
 */
export function boundHost(server: Server): string | undefined {
  const bound = server.address();
  return bound === null || typeof bound === 'string' ? undefined : bound.address;
}

/** The certificate, key and client CA of `tls`, as files read now (at start, and at each reload). */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/** Reads the TLS files and checks that they make a context (a key that does not fit is refused here). */
export async function readTlsMaterial(tls: NonNullable<Config['tls']>): Promise<TlsMaterial> {
  const read = async (key: string, path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new ConfigError(`tls.${key}: cannot read ${path}: ${messageOf(error)}`);
    }
  };
  const material: TlsMaterial = {
    cert: await read('cert', tls.cert),
    key: await read('key', tls.key),
    ...(tls.clientCa ? { ca: await read('clientCa', tls.clientCa) } : {}),
  };
  try {
    createSecureContext({ ...material, minVersion: MIN_TLS_VERSION });
  } catch (error) {
    throw new ConfigError(
      `tls: ${tls.cert}, ${tls.key}${tls.clientCa ? ` and ${tls.clientCa}` : ''} do not make a TLS context: ${messageOf(error)}`,
    );
  }
  return material;
}

const MIN_TLS_VERSION = 'TLSv1.2';

export function createListener(tls: TlsMaterial | undefined, auth: AuthOptions, handler: RequestListener): Server {
  if (!tls) return hardened(createHttpServer(handler));
  const server = createHttpsServer(
    { ...tls, minVersion: MIN_TLS_VERSION, ...(tls.ca ? { requestCert: true, rejectUnauthorized: rejectsWithoutCertificate(auth) } : {}) },
    handler,
  );
  return hardened(server);
}

/** With tokens as well, a client without a certificate may still show a token. */
function rejectsWithoutCertificate(auth: AuthOptions): boolean {
  return auth.tokens.length === 0;
}

/**
 * A reload's TLS material and tokens, applied to a running HTTPS listener: new connections get the
 * new certificate and CA (setSecureContext); connections already open keep theirs. Whether a client
 * without a certificate may still connect (to show a token) follows the tokens: node's tls.Server
 * reads `rejectUnauthorized` from itself for each new connection (lib/_tls_wrap.js).
 */
export function applyTls(server: Server, tls: TlsMaterial, auth: AuthOptions): void {
  if (!(server instanceof HttpsServer)) return;
  server.setSecureContext({ ...tls, minVersion: MIN_TLS_VERSION });
  // Not in node's types, but what each new TLSSocket is made with (tlsConnectionListener).
  if (tls.ca) Object.assign(server, { rejectUnauthorized: rejectsWithoutCertificate(auth) });
}

/** A Unix-socket listener is plain HTTP: the file's mode and group guard it. */
export function createUnixListener(handler: RequestListener): Server {
  return acceptsUnixPeers(hardened(createHttpServer(handler)));
}

function hardened(server: Server): Server {
  // Slow or idle clients do not hold sockets for long (streams are responses: not affected).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  return server;
}
