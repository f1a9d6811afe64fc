/**
 * The app's options for tests that build the express app alone (no runner, no systemd): nothing
 * behind them is called; `anonymous` is who a request without credentials is (the runner's
 * default: nobody).
 */
import type { AppOptions } from '../../src/api/app.js';

export function appOptionsForTests(anonymous: 'none' | 'read' = 'none'): AppOptions {
  return {
    health: {} as AppOptions['health'],
    logs: {} as AppOptions['logs'],
    auth: () => ({ tokens: [], unixSocket: 'write', anonymous }),
    policy: () => ({ hosts: new Set(), origins: new Set() }),
    limits: {
      maxBodyBytes: 1024,
      maxJsonDepth: 8,
      maxLogStreams: 1,
      maxEventStreams: 1,
      maxFileEntries: 1,
      maxFileDepth: 1,
      maxFileBytes: 1,
    },
    files: {} as AppOptions['files'],
    heartbeatMs: 1000,
    shuttingDown: new AbortController().signal,
  };
}
