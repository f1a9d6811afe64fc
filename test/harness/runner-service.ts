/**
 * The runner under test, started inside the private systemd as a service of its own (as a package
 * would run it), with its own config, state directory and port.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { APP_DIR_INSIDE, PrivateSystemd } from '../../src/embedded/private-systemd.js';
import { startRunnerUnit } from '../../src/embedded/runner-unit.js';

export interface RunnerService {
  baseUrl: string;
  unit: string;
  /** The state directory, inside the private system. */
  stateDir: string;
  systemd: PrivateSystemd;
  /** (Re)starts the runner's unit; `env` adds environment variables (TESSIA_FAULT=… runs test/harness/serve-with-faults.ts). */
  start(env?: Record<string, string>, properties?: string[]): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL to the runner's processes, as a crash would. */
  kill(): Promise<void>;
  /** The runner's own journal (messages), for failure messages. */
  journal(): Promise<string>;
  /** The runner's own journal entries with their fields. */
  journalEntries(): Promise<Record<string, string>[]>;
}

/** A config with short grace periods, so the tests' stops do not wait a minute. */
export const TEST_MACHINES = {
  echo: { builtin: 'echo', description: 'echo for tests', limits: { stopGraceSec: 10 } },
  'echo-short': { builtin: 'echo', limits: { runtimeMaxSec: 2, stopGraceSec: 2 } },
  'no-such-program': { exec: ['/nonexistent/tessia-machine'], description: 'a machine whose program is missing' },
  seq1000: { exec: ['/usr/bin/seq', '1', '1000'] },
  burst: { exec: ['/usr/bin/seq', '1', '100000'] },
  'burst-children': { exec: ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do seq 1 10000 & done; wait'] },
  blob: {
    exec: ['/bin/sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo; printf "bin\\377\\376ary\\n"; echo after'],
  },
  sleeper: { exec: ['/bin/sh', '-c', 'echo first; sleep 60'] },
  // Reports what its sandbox lets it do, one "check:result" line each.
  probe: {
    exec: [
      '/bin/sh',
      '-c',
      [
        'echo "uid:$(id -u)"',
        'touch /etc/tessia-probe 2>/dev/null && echo etc:writable || echo etc:denied',
        'touch /usr/tessia-probe 2>/dev/null && echo usr:writable || echo usr:denied',
        'touch /run/tessia-probe 2>/dev/null && echo run:writable || echo run:denied',
        'touch "$PWD/own-file" && echo workdir:writable || echo workdir:denied',
        'echo "workdir-path:$PWD"',
        'touch /tmp/probe-$TESSIA_TASK_ID && echo tmp:writable || echo tmp:denied',
        'echo "tmp-entries:$(ls -A /tmp | tr \"\\n\" \" \")"',
        'echo "nonewprivs:$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)"',
        'echo "capeff:$(grep CapEff /proc/self/status | cut -f2)"',
        'echo "secret-$TESSIA_TASK_ID" > "$PWD/secret"',
        'echo written',
        'sleep 60',
      ].join('; '),
    ],
  },
  // Tries to read the path given as its parameters (a JSON string, on its stdin).
  'read-path': {
    exec: ['/bin/sh', '-c', 'p=$(tr -d \'"\'); cat "$p" >/dev/null 2>&1 && echo read:allowed || echo read:denied'],
  },
  hog: {
    // Bounded: 512 MiB at most, so a limit that does not hold fails the test, not the machine.
    exec: ['/usr/bin/node', '-e', 'const kept = []; for (let i = 0; i < 512; i++) kept.push(Buffer.alloc(1 << 20, 1)); console.log("survived");'],
    limits: { memoryMax: '64M' },
  },
  // Runs until the test creates /run/tessia-test/release (tests control the timing), then exits 3.
  'until-released': {
    exec: ['/bin/sh', '-c', 'echo waiting; while [ ! -e /run/tessia-test/release ]; do sleep 0.1; done; echo released; exit 3'],
  },
};

export interface RunnerServiceOptions {
  /** Host of --listen. (Default: 127.0.0.1) */
  listenHost?: string;
  /** Leave the unit to fail instead of waiting for the API (for tests of refused configs). */
  expectFailure?: boolean;
  /** Use https:// in baseUrl. */
  tls?: boolean;
  /** Flags for node itself (the benchmarks' --cpu-prof). */
  nodeFlags?: string[];
}

export async function startRunnerService(
  config: Record<string, unknown> = {},
  options: RunnerServiceOptions = {},
): Promise<RunnerService> {
  const systemd = PrivateSystemd.fromEnvironment();
  const name = `tessia-test-runner-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const dirInside = `/run/tessia-test/${name}`;
  mkdirSync(`${systemd.root}${dirInside}`, { recursive: true });
  const configPath = `${dirInside}/config.yaml`;
  writeFileSync(`${systemd.root}${configPath}`, stringify({ machines: TEST_MACHINES, ...config }));
  const unit = `${name}.service`;
  const service: RunnerService = {
    baseUrl: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    unit,
    stateDir: `${dirInside}/state`,
    systemd,
    start: async (env = {}, properties = []) => {
      // A transient unit that failed (a crash) stays loaded until reset; an inactive one is gone.
      await systemd.systemctl('reset-failed', unit);
      const started = await startRunnerUnit(systemd, {
        unit,
        env: { NODE_ENV: 'test', ...env },
        properties,
        ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
        // A crash at a chosen step of a start needs the test-only entry point.
        ...(env['TESSIA_FAULT'] ? { entry: ['--import', 'tsx', `${APP_DIR_INSIDE}/test/harness/serve-with-faults.ts`] } : {}),
        serveArgs: ['--config', configPath, '--listen', `${options.listenHost ?? '127.0.0.1'}:${port}`, '--state-dir', `${dirInside}/state`],
      });
      if (options.expectFailure) return;
      if (started.code !== 0) throw new Error(`systemd-run failed: ${started.stderr}\n${await service.journal()}`);
      if (!options.tls) await waitUntilAnswering(service);
    },
    stop: async () => {
      await systemd.systemctl('stop', unit);
    },
    restart: async () => {
      await systemd.systemctl('restart', unit);
      if (!options.tls) await waitUntilAnswering(service);
    },
    kill: async () => {
      await systemd.systemctl('kill', '--signal=SIGKILL', unit);
      for (let i = 0; i < 200; i++) {
        const state = (await systemd.show(unit, ['ActiveState']))['ActiveState'];
        if (state !== 'active' && state !== 'deactivating') return;
        await sleep(50);
      }
      throw new Error(`${unit} did not die`);
    },
    journal: async () => (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit])).stdout,
    journalEntries: async () =>
      (await systemd.run(['journalctl', '--no-pager', '-o', 'json', '-u', unit])).stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, string>),
  };
  await service.start();
  return service;
}

/** Where a test may put files the runner reads (TLS material, token files), inside the private system. */
export function fileForRunner(name: string, content: string | Buffer): string {
  const systemd = PrivateSystemd.fromEnvironment();
  const path = `/run/tessia-test/files/${randomBytes(4).toString('hex')}-${name}`;
  mkdirSync(`${systemd.root}/run/tessia-test/files`, { recursive: true });
  writeFileSync(`${systemd.root}${path}`, content);
  return path;
}

async function waitUntilAnswering(service: RunnerService): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(`${service.baseUrl}/`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`the runner did not answer on ${service.baseUrl}:\n${await service.journal()}`);
    }
    await sleep(50);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
