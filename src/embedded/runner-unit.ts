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
  /** Another build of the runner to run (a directory inside the private system holding its dist/): A/B benchmarks. (Default: the checkout) */
  appDir?: string;
}

export function startRunnerUnit(systemd: PrivateSystemd, options: RunnerUnitOptions): Promise<RunResult> {
  const appDir = options.appDir ?? APP_DIR_INSIDE;
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
    `--property=ExecReload=/usr/bin/node ${appDir}/dist/cli/main.js reload`,
    `--working-directory=${appDir}`,
    ...Object.entries(options.env ?? {}).map(([key, value]) => `--setenv=${key}=${value}`),
    ...(options.properties ?? []).map((property) => `--property=${property}`),
    '--',
    '/usr/bin/node',
    ...(options.nodeFlags ?? []),
    ...(options.entry ?? [`${appDir}/dist/cli/main.js`]),
    'serve',
    ...options.serveArgs,
  ]);
}

/** The privileged starter as the package runs it, listening on `socket` (root's alone) instead of a passed one. */
export function startStarterUnit(
  systemd: PrivateSystemd,
  options: { unit: string; configPath: string; socket: string; nodeFlags?: string[]; appDir?: string },
): Promise<RunResult> {
  const appDir = options.appDir ?? APP_DIR_INSIDE;
  return systemd.run([
    'systemd-run',
    `--unit=${options.unit}`,
    '--property=Type=notify',
    '--property=NotifyAccess=all',
    `--property=RuntimeDirectory=${options.unit.replace(/\.service$/, '')}`,
    `--working-directory=${appDir}`,
    '--',
    '/usr/bin/node',
    ...(options.nodeFlags ?? []),
    `${appDir}/dist/starter/main.js`,
    '--config',
    options.configPath,
    '--socket',
    options.socket,
  ]);
}
