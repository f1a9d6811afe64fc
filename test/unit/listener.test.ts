/** The listener's rules: what counts as a guard off loopback, TLS material read and applied to a running server. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { AuthOptions } from '../../src/api/auth.js';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { applyTls, assertSafeListener, createListener, isLoopback, readTlsMaterial, unguarded } from '../../src/listener.js';
import { testPki, type Pem } from '../harness/tls.js';

const pki = testPki();
const directory = mkdtempSync(join(tmpdir(), 'tessia-listener-'));
after(() => rmSync(directory, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(directory, name);
  writeFileSync(path, content);
  return path;
}

const NO_TOKENS: AuthOptions = { tokens: [], anonymous: 'none', unixSocket: 'write' };
const TOKENS: AuthOptions = { ...NO_TOKENS, tokens: [{ name: 'a', sha256: 'a'.repeat(64), scope: 'write' }] };
const TLS = { cert: '/etc/t/server.crt', key: '/etc/t/server.key' };
const silent = pino({ level: 'silent' });

describe('what guards a listener off loopback', () => {
  const cases: [string, Record<string, unknown>, AuthOptions, RegExp | undefined][] = [
    ['nothing', {}, NO_TOKENS, /without TLS or tokens/],
    ['TLS alone', { tls: TLS }, NO_TOKENS, /with TLS but without client certificates/],
    ['tokens without TLS', {}, TOKENS, /with tokens but without TLS/],
    ['tokens over TLS', { tls: TLS }, TOKENS, undefined],
    ['client certificates', { tls: { ...TLS, clientCa: '/etc/t/ca.crt' } }, NO_TOKENS, undefined],
    [
      'client certificates, anonymous callers let write',
      { tls: { ...TLS, clientCa: '/etc/t/ca.crt' } },
      { ...NO_TOKENS, anonymous: 'write' },
      /auth\.anonymous: write \(every caller may run tasks\)/,
    ],
    [
      'tokens over TLS, anonymous callers let read',
      { tls: TLS },
      { ...TOKENS, anonymous: 'read' },
      /auth\.anonymous: read \(every caller may read every task and its logs\)/,
    ],
  ];
  for (const [what, config, auth, problem] of cases) {
    it(`${what}: ${problem ? 'not a guard' : 'a guard'}.`, () => {
      const reason = unguarded(validateConfig(config), auth);
      if (problem) assert.match(reason ?? '', problem);
      else assert.equal(reason, undefined);
    });
  }

  it('refuses an unguarded listener off loopback (IPv4, IPv6, a name), not on loopback, and not with insecure: true.', () => {
    const open = validateConfig({ tls: TLS });
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'runner.example']) {
      assert.throws(
        () => assertSafeListener(host, open, NO_TOKENS, silent, 'socket activation'),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(
            error.message,
            new RegExp(`^socket activation: refusing to listen on ${host.replace(/\./g, '\\.')}, off loopback, with TLS but`),
          );
          return true;
        },
      );
    }
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost']) {
      assert.equal(isLoopback(host), true, host);
      assertSafeListener(host, open, NO_TOKENS, silent);
    }
    assertSafeListener('0.0.0.0', validateConfig({ tls: TLS, insecure: true }), NO_TOKENS, silent);
  });
});

describe('TLS material', () => {
  it('refuses a key that does not fit the certificate, naming the files.', async () => {
    const tls = { cert: file('mismatch.crt', pki.server.cert), key: file('mismatch.key', pki.client.key), clientScope: 'write' as const };
    await assert.rejects(readTlsMaterial(tls), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /mismatch\.crt, .*mismatch\.key do not make a TLS context/);
      return true;
    });
  });

  it('refuses a file it cannot read, naming the key and the path.', async () => {
    await assert.rejects(
      readTlsMaterial({ cert: join(directory, 'none.crt'), key: join(directory, 'none.key'), clientScope: 'write' }),
      /tls\.cert: cannot read .*none\.crt/,
    );
  });

  describe('applied to a running server', () => {
    let server: Server | undefined;
    after(() => server?.close());

    function connect(identity?: Pem): Promise<{ status: number; fingerprint: string }> {
      const { port } = server!.address() as AddressInfo;
      return new Promise((resolve, reject) => {
        const sent = request({ host: '127.0.0.1', port, path: '/', agent: false, ca: pki.ca.cert, ...(identity ?? {}) }, (response) => {
          response.resume();
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, fingerprint: (response.socket as TLSSocket).getPeerCertificate().fingerprint256 }),
          );
        });
        sent.on('error', reject);
        sent.end();
      });
    }

    it('serves new connections with the new certificate, and lets clients without one in once tokens exist.', async () => {
      const config = {
        cert: file('s.crt', pki.server.cert),
        key: file('s.key', pki.server.key),
        clientCa: file('ca.crt', pki.ca.cert),
        clientScope: 'write' as const,
      };
      server = createListener(await readTlsMaterial(config), NO_TOKENS, (_request, response) => response.end('ok'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      assert.equal((await connect(pki.client)).fingerprint, new X509Certificate(pki.server.cert).fingerprint256);
      await assert.rejects(connect(), 'mutual TLS without tokens: no certificate, no connection');

      writeFileSync(config.cert, pki.rotatedServer.cert);
      writeFileSync(config.key, pki.rotatedServer.key);
      applyTls(server, await readTlsMaterial(config), TOKENS);
      assert.equal((await connect(pki.client)).fingerprint, new X509Certificate(pki.rotatedServer.cert).fingerprint256);
      assert.equal((await connect()).status, 200, 'with tokens, a client without a certificate may connect (to show one)');

      applyTls(server, await readTlsMaterial(config), NO_TOKENS);
      await assert.rejects(connect(), 'tokens gone: no certificate, no connection again');
    });
  });
});
