import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { restartOnlyChanges } from '../../src/config/reloadable.js';

const TLS = { cert: '/etc/t/server.crt', key: '/etc/t/server.key' };
const token = (name: string) => ({ name, sha256: 'a'.repeat(64), scope: 'write' });

describe('what a reload may change', () => {
  it('nothing needs a restart when nothing changed.', () => {
    assert.deepEqual(restartOnlyChanges(validateConfig({ tls: TLS }), validateConfig({ tls: TLS })), []);
  });

  it('applies machines, tokens, the token file, TLS files, insecure, allowed hosts and origins and the log level.', () => {
    const current = validateConfig({ tls: { ...TLS, clientCa: '/etc/t/ca.crt' } });
    const next = validateConfig({
      tls: { cert: '/etc/t/new.crt', key: '/etc/t/new.key', clientCa: '/etc/t/new-ca.crt', clientScope: 'read' },
      auth: { tokens: [token('a')], tokenFile: '/etc/t/tokens.yaml' },
      machines: { late: { builtin: 'echo' } },
      insecure: true,
      allowedHosts: ['runner.example'],
      allowedOrigins: ['https://console.example'],
      log: { level: 'debug' },
    });
    assert.deepEqual(restartOnlyChanges(current, next), []);
  });

  it('names each other setting that changed: listen, stateDir, unixSocket, limits, tasks, logs.', () => {
    const current = validateConfig({});
    const next = validateConfig({
      listen: '0.0.0.0:7356',
      stateDir: '/srv/state',
      unixSocket: { path: '/run/x.sock' },
      limits: { maxLogStreams: 3 },
      tasks: { stopWaitSec: 2 },
      logs: { heartbeatSec: 3 },
    });
    assert.deepEqual(restartOnlyChanges(current, next).sort(), ['limits', 'listen', 'logs', 'stateDir', 'tasks', 'unixSocket']);
  });

  it('needs a restart to turn TLS or client certificates on or off.', () => {
    assert.deepEqual(restartOnlyChanges(validateConfig({}), validateConfig({ tls: TLS })), ['tls (added)']);
    assert.deepEqual(restartOnlyChanges(validateConfig({ tls: TLS }), validateConfig({})), ['tls (removed)']);
    assert.deepEqual(restartOnlyChanges(validateConfig({ tls: TLS }), validateConfig({ tls: { ...TLS, clientCa: '/etc/t/ca.crt' } })), [
      'tls.clientCa (added)',
    ]);
  });
});
