/**
 * A runner started inside the private systemd as a service of its own (as a package would run it),
 * with its own config, state directory and port: the tests' runner under test, the benchmarks' runner.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { PrivateSystemd } from './private-systemd.js';
import { startRunnerUnit, startStarterUnit } from './runner-unit.js';

export interface RunnerService {
  baseUrl: string;
  unit: string;
  /** The state directory, inside the private system. */
  stateDir: string;
  /** Its RuntimeDirectory (the parameters handoff, the control socket), inside the private system. */
  runtimeDir: string;
  /** Its config file, inside the private system. */
  configPath: string;
  /** Rewrites its config file (then reload): `config` plus what the service itself needs (its starter's socket). */
  writeConfig(config: Record<string, unknown>): void;
  /** Where a task's parameters wait for its unit to start (the starter's, or the runner's own). */
  parametersDir: string;
  /** The privileged starter's socket and unit, inside the private system, when it has one. */
  starter: { socket: string; unit: string } | null;
  systemd: PrivateSystemd;
  /** (Re)starts the runner's unit; `env` adds variables, `entry` (node arguments) replaces the shipped entry point. */
  start(env?: Record<string, string>, properties?: string[], entry?: string[]): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL to the runner's processes, as a crash would. */
  kill(): Promise<void>;
  /** The runner's own journal (messages), for failure messages. */
  journal(): Promise<string>;
  /** The runner's own journal entries with their fields. */
  journalEntries(): Promise<Record<string, string>[]>;
}

export interface RunnerServiceOptions {
  /** Host of --listen. (Default: 127.0.0.1) */
  listenHost?: string;
  /** Leave the unit to fail instead of waiting for the API (for tests of refused configs). */
  expectFailure?: boolean;
  /** Use https:// in baseUrl. */
  tls?: boolean;
  /** Flags for node itself (the benchmarks' --cpu-prof). */
  nodeFlags?: string[];
  /** Environment variables of the service at every start (the benchmarks' MALLOC_ARENA_MAX). */
  env?: Record<string, string>;
  /**
   * Start task units through a privileged starter of its own (a unit next to the runner's, as the
   * package runs it) instead of in the runner's process. (Default: false)
   */
  starter?: boolean;
  /** Node flags of the starter (e.g. --cpu-prof). */
  starterNodeFlags?: string[];
  /** Another build to run, runner and starter (a directory inside the private system holding its dist/): A/B benchmarks. */
  appDir?: string;
  /**
   * The system user the runner runs as (made in the private system when missing), as the package's
   * unit runs it: its state directory its own, the journal's group, and the starter's socket open to
   * its group, as the package's socket unit opens it. systemd asks polkit about each of its own
   * stops. (Default: root)
   */
  user?: string;
}

export async function startRunnerService(config: Record<string, unknown> = {}, options: RunnerServiceOptions = {}): Promise<RunnerService> {
  const systemd = PrivateSystemd.fromEnvironment();
  const name = `tessia-test-runner-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const dirInside = `/run/tessia-test/${name}`;
  mkdirSync(`${systemd.root}${dirInside}`, { recursive: true });
  const configPath = `${dirInside}/config.yaml`;
  const starterSocket = `${dirInside}/starter.sock`;
  const starterUnit = `${name}-starter.service`;
  const writeConfig = (config: Record<string, unknown>) => {
    const tasks = { ...(config['tasks'] as Record<string, unknown> | undefined), ...(options.starter ? { starterSocket } : {}) };
    writeFileSync(`${systemd.root}${configPath}`, stringify({ ...config, tasks }));
  };
  writeConfig(config);
  const unit = `${name}.service`;
  const ensureStarter = async () => {
    if (!options.starter || (await systemd.systemctl('is-active', '--quiet', starterUnit)).code === 0) return;
    await systemd.systemctl('reset-failed', starterUnit);
    const started = await startStarterUnit(systemd, {
      unit: starterUnit,
      configPath,
      socket: starterSocket,
      ...(options.starterNodeFlags ? { nodeFlags: options.starterNodeFlags } : {}),
      ...(options.appDir ? { appDir: options.appDir } : {}),
    });
    if (started.code !== 0) throw new Error(`the starter did not start: ${started.stderr}`);
    if (options.user) await mustRun(systemd, ['sh', '-c', 'chgrp "$1" "$2" && chmod 0660 "$2"', 'sh', options.user, starterSocket]);
  };
  const asUser = options.user ? [`User=${options.user}`, `Group=${options.user}`, 'SupplementaryGroups=systemd-journal'] : [];
  if (options.user) {
    await ensureSystemUser(systemd, options.user);
    await mustRun(systemd, ['install', '-d', '-o', options.user, '-g', options.user, '-m', '0750', `${dirInside}/state`]);
  }
  const service: RunnerService = {
    baseUrl: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    unit,
    stateDir: `${dirInside}/state`,
    runtimeDir: `/run/${name}`,
    configPath,
    writeConfig,
    starter: options.starter ? { socket: starterSocket, unit: starterUnit } : null,
    parametersDir: options.starter ? `/run/${starterUnit.replace(/\.service$/, '')}/parameters` : `/run/${name}/parameters`,
    systemd,
    start: async (env = {}, properties = [], entry) => {
      // A transient unit that failed (a crash) stays loaded until reset; an inactive one is gone.
      await systemd.systemctl('reset-failed', unit);
      await ensureStarter();
      const started = await startRunnerUnit(systemd, {
        unit,
        env: { NODE_ENV: 'test', ...options.env, ...env },
        properties: [...asUser, ...properties],
        ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
        ...(entry ? { entry } : {}),
        ...(options.appDir ? { appDir: options.appDir } : {}),
        serveArgs: [
          '--config',
          configPath,
          '--listen',
          `${options.listenHost ?? '127.0.0.1'}:${port}`,
          '--state-dir',
          `${dirInside}/state`,
        ],
      });
      if (options.expectFailure) return;
      if (started.code !== 0) throw new Error(`systemd-run failed: ${started.stderr}\n${await service.journal()}`);
      if (!options.tls) await waitUntilAnswering(service);
    },
    stop: async () => {
      await systemd.systemctl('stop', unit);
      if (options.starter) await systemd.systemctl('stop', starterUnit);
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

/** A system user (and its group) in the private system, made unless it is there. */
export async function ensureSystemUser(systemd: PrivateSystemd, user: string): Promise<void> {
  if ((await systemd.run(['id', '-u', user])).code === 0) return;
  await mustRun(systemd, ['useradd', '--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
}

/** Runs argv inside the private system; its failure, with what it printed on stderr, is thrown. */
export async function mustRun(systemd: PrivateSystemd, argv: string[]): Promise<void> {
  const done = await systemd.run(argv);
  if (done.code !== 0) throw new Error(`${argv.join(' ')} failed: ${done.stderr}`);
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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
