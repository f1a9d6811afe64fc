/**
 * `tessia-task-runner serve`: load the config, start the runner, and answer the signals systemd
 * sends (SIGTERM: shut down without touching a task; SIGHUP: reload the config) and the reloads
 * asked over its control socket (`tessia-task-runner reload`, which `systemctl reload` runs).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, defaultConfigPath, loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import type { Runner, StartHooks } from '../server.js';
import { messageOf } from '../errors.js';
import { CONTROL_SOCKET_NAME, openControlSocket } from '../control-socket.js';
import { checkBuildAbi } from '../native-abi.js';
import { EXIT } from './exit-status.js';
import { VERSION } from '../version.js';

export const SERVE_USAGE = `Usage: tessia-task-runner serve [--config FILE] [--listen HOST:PORT] [--state-dir DIR]

  --config FILE      YAML config (default: $CONFIGURATION_DIRECTORY/config.yaml,
                     else /etc/tessia-task-runner/config.yaml when present, else built-in defaults)
  --listen HOST:PORT where the HTTP API listens (default: the config's listen, 127.0.0.1:7356)
  --state-dir DIR    where the task store lives (default: the config's stateDir, $STATE_DIRECTORY,
                     else /var/lib/tessia-task-runner)

Exit status: ${EXIT.ok} stopped (SIGTERM, SIGINT), ${EXIT.failed} failed, ${EXIT.usage} a bad command line or config,
${EXIT.nativeAddonMismatch} its native addons were built for another Node.js (the service unit does not restart it)
`;

export const SERVE_OPTIONS = {
  config: { type: 'string' },
  listen: { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function splitHostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = value.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(at + 1)) };
}

/** `hooks`: for tests only (test/harness/serve-with-faults.ts); the shipped entry point passes none. */
export async function serve(args: string[], hooks: StartHooks = {}): Promise<void> {
  const { values } = parseArgs({ args, options: SERVE_OPTIONS, strict: true });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  // Before anything loads a compiled addon: built for another Node.js, it fails to load (the store's
  // better-sqlite3) or is left out (unix-dgram). Throws NativeAddonMismatch, which main.ts turns into
  // one line and EXIT.nativeAddonMismatch. The server (and with it the store) is imported only then.
  const abi = checkBuildAbi();
  const { startRunner } = await import('../server.js');
  const configPath = values.config ?? defaultConfigPath();
  const overrides = {
    ...(values.listen === undefined ? {} : { listen: values.listen }),
    ...(values['state-dir'] === undefined ? {} : { stateDir: resolve(values['state-dir']) }),
  };
  const config = await loadConfig(configPath, overrides);
  const listen = splitHostPort(config.listen);
  const stateDir = config.stateDir ?? process.env['STATE_DIRECTORY']?.split(':')[0] ?? '/var/lib/tessia-task-runner';
  const runtimeDir = process.env['RUNTIME_DIRECTORY']?.split(':')[0] ?? join(stateDir, 'run');
  const { log, nativeJournalOff, flush } = createLogger(config.log.level, { service: true });
  log.info({ version: VERSION }, `tessia-task-runner ${VERSION} starting`);
  if (nativeJournalOff) {
    // Turned off, not installed, not built: the admin's choice or a tree without a compiler. An
    // addon that is there but does not load is a broken install.
    const broken = nativeJournalOff.reason === 'built-for-another-node' || nativeJournalOff.reason === 'failed';
    log[broken ? 'warn' : 'info'](`the native journal transport is off (${nativeJournalOff.detail}): fields are written as KEY=value text`);
  }
  if (!abi.recorded) log.debug(`the native addons' Node.js ABI was not checked before loading them: no build record (${abi.why})`);
  // A reload re-reads the config file (and the token file and TLS files it names) and applies it
  // whole, or refuses it whole and keeps the config in force (logged). One at a time, in the order asked.
  const up: { runner?: Runner } = {};
  let reloading = Promise.resolve();
  const reload = (): Promise<string> => {
    const result = reloading.then(async () => {
      if (!up.runner) throw new ConfigError('the runner is still starting: reload it once it is up');
      return up.runner.reload(await loadConfig(configPath, overrides));
    });
    reloading = result.then(
      () => undefined,
      (error: unknown) => log.error({ err: error }, `config reload refused, the running config is kept: ${messageOf(error)}`),
    );
    return result;
  };
  // `systemctl reload` runs `tessia-task-runner reload` (ExecReload=), which asks over the control
  // socket and waits for the answer: systemd then knows whether it worked (see the service unit).
  // Open before the runner says it is ready, so that a reload right after the start finds it.
  const closeControl = await openControlSocket(join(runtimeDir, CONTROL_SOCKET_NAME), { reload }).catch((error: unknown) => {
    log.error(
      { err: error },
      `no control socket in ${runtimeDir}: \`systemctl reload\` will fail (SIGHUP still reloads): ${messageOf(error)}`,
    );
    return async () => {};
  });
  // A bare SIGHUP (kill -HUP) reloads too; its result is only logged.
  process.on('SIGHUP', () => void reload().catch(() => undefined));
  let started: Runner;
  try {
    started = await startRunner({ config, stateDir, runtimeDir, listen, log, hooks });
  } catch (error) {
    await closeControl();
    await flush(); // what was logged on the way (why listening was refused…) before main exits
    throw error;
  }
  up.runner = started;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down (tasks keep running)');
    void started
      .close()
      .then(closeControl)
      .then(
        () => log.info('stopped'),
        (error: unknown) => log.error({ err: error }, `shutdown failed: ${messageOf(error)}`),
      )
      // A task's change is logged a turn after it is written (transitions.ts): a turn, then the last flush.
      .then(() => new Promise((resolve) => setImmediate(resolve)))
      .then(flush)
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
