/**
 * The runner as a service of the private systemd, as the package runs it: `Type=notify` (ready once
 * recovery is done and it listens), started with systemd-run from the checkout mounted inside.
 * Used by `npm start`, the tests and the benchmarks.
 */
import { APP_DIR_INSIDE, type PrivateSystemd, type RunResult } from './private-systemd.js';

export interface RunnerUnitOptions {
  unit: string;
  /** Flags of `tessia-task-runner serve`. */
  serveArgs: string[];
  /** Environment variables of the service. */
  env?: Record<string, string>;
  /** More unit properties (NAME=value). */
  properties?: string[];
  /** Flags for node itself (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Another entry point than the shipped one, as node arguments (tests: a runner with fault hooks). */
  entry?: string[];
}

const SHIPPED_ENTRY = [`${APP_DIR_INSIDE}/dist/cli/main.js`];

export function startRunnerUnit(systemd: PrivateSystemd, options: RunnerUnitOptions): Promise<RunResult> {
  return systemd.run([
    'systemd-run',
    `--unit=${options.unit}`,
    '--property=Type=notify',
    '--property=NotifyAccess=all',
    '--property=KillMode=mixed',
    '--property=TimeoutStopSec=20s',
    // As the package's unit: a RuntimeDirectory (the parameters handoff, the control socket) and a
    // reload that waits for the runner's answer.
    `--property=RuntimeDirectory=${options.unit.replace(/\.service$/, '')}`,
    '--property=RuntimeDirectoryMode=0700',
    `--property=ExecReload=/usr/bin/node ${APP_DIR_INSIDE}/dist/cli/main.js reload`,
    `--working-directory=${APP_DIR_INSIDE}`,
    ...Object.entries(options.env ?? {}).map(([key, value]) => `--setenv=${key}=${value}`),
    ...(options.properties ?? []).map((property) => `--property=${property}`),
    '--',
    '/usr/bin/node',
    ...(options.nodeFlags ?? []),
    ...(options.entry ?? SHIPPED_ENTRY),
    'serve',
    ...options.serveArgs,
  ]);
}

/** The privileged starter as the package runs it, listening on `socket` (root's alone) instead of a passed one. */
export function startStarterUnit(
  systemd: PrivateSystemd,
  options: { unit: string; configPath: string; socket: string; nodeFlags?: string[] },
): Promise<RunResult> {
  return systemd.run([
    'systemd-run',
    `--unit=${options.unit}`,
    '--property=Type=notify',
    '--property=NotifyAccess=all',
    `--property=RuntimeDirectory=${options.unit.replace(/\.service$/, '')}`,
    `--working-directory=${APP_DIR_INSIDE}`,
    '--',
    '/usr/bin/node',
    ...(options.nodeFlags ?? []),
    `${APP_DIR_INSIDE}/dist/starter/main.js`,
    '--config',
    options.configPath,
    '--socket',
    options.socket,
  ]);
}
