/**
 * The HTTP(S) listener and its safety rules: HTTPS with the configured certificate (client
 * certificates checked against the CA for mutual TLS), tokens from the config and the token file,
 * and no listening off loopback without TLS or tokens unless the config says `insecure: true`.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import { z } from 'zod';
import type { AuthOptions } from './api/auth.js';
import { ConfigError } from './config/load.js';
import { describeIssues, messageOf } from './errors.js';
import { TokenSchema, type Config } from './config/schema.js';

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
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
  };
}

/** Refuses an open door: off loopback, someone must check who is calling. */
export function assertSafeListener(host: string, config: Config, auth: AuthOptions, log: Logger): void {
  if (isLoopback(host)) return;
  const guarded = config.tls !== undefined || auth.tokens.length > 0;
  if (guarded) return;
  if (!config.insecure) {
    throw new ConfigError(
      `listen: refusing to listen on ${host}, off loopback, without TLS or tokens: configure tls and/or auth.tokens, or set "insecure: true" to accept that anyone who reaches the port can run tasks`,
    );
  }
  log.warn({ host }, 'INSECURE: listening off loopback without TLS or tokens (insecure: true): anyone who reaches the port can run tasks');
}

/** The sockets systemd passed us (LISTEN_FDS, socket activation), as file descriptors. */
export function activationFds(environment: NodeJS.ProcessEnv = process.env): number[] {
  const count = Number(environment['LISTEN_FDS']);
  const pid = Number(environment['LISTEN_PID']);
  if (!Number.isInteger(count) || count <= 0 || pid !== process.pid) return [];
  return Array.from({ length: count }, (_, index) => 3 + index);
}

export async function createListener(config: Config, auth: AuthOptions, handler: RequestListener): Promise<Server> {
  let server: Server;
  if (config.tls) {
    const read = async (key: string, path: string) => {
      try {
        return await readFile(path);
      } catch (error) {
        throw new ConfigError(`tls.${key}: cannot read ${path}: ${messageOf(error)}`);
      }
    };
    const clientCa = config.tls.clientCa;
    server = createHttpsServer(
      {
        cert: await read('cert', config.tls.cert),
        key: await read('key', config.tls.key),
        minVersion: 'TLSv1.2',
        ...(clientCa
          ? {
              ca: await read('clientCa', clientCa),
              requestCert: true,
              // With tokens as well, a client without a certificate may still show a token.
              rejectUnauthorized: auth.tokens.length === 0,
            }
          : {}),
      },
      handler,
    );
  } else {
    server = createHttpServer(handler);
  }
  return hardened(server);
}

/** A Unix-socket listener is plain HTTP: the file's mode and group guard it. */
export function createUnixListener(handler: RequestListener): Server {
  return hardened(createHttpServer(handler));
}

function hardened(server: Server): Server {
  // Slow or idle clients do not hold sockets for long (streams are responses: not affected).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  return server;
}
