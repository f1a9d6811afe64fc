#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { startRunner } from '../server.js';
import { FAULT_POINTS } from '../tasks/service.js';
import { taskCommand } from './task-commands.js';

const USAGE = `Usage: tessia-task-runner serve [--config FILE] [--listen HOST:PORT] [--state-dir DIR]
       tessia-task-runner task <command> …   (tessia-task-runner task --help)

  --config FILE      YAML config (default: $CONFIGURATION_DIRECTORY/config.yaml,
                     else /etc/tessia-task-runner/config.yaml when present, else built-in defaults)
  --listen HOST:PORT where the HTTP API listens (default: the config's listen, 127.0.0.1:7356)
  --state-dir DIR    where the task store lives (default: the config's stateDir, $STATE_DIRECTORY,
                     else /var/lib/tessia-task-runner)
`;

function defaultConfigPath(): string | undefined {
  const directory = process.env['CONFIGURATION_DIRECTORY']?.split(':')[0];
  const candidates = [directory && join(directory, 'config.yaml'), '/etc/tessia-task-runner/config.yaml'];
  return candidates.find((path): path is string => Boolean(path) && existsSync(path as string));
}

export function splitHostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = value.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(at + 1)) };
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      listen: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const configPath = values.config ?? defaultConfigPath();
  const overrides = {
    listen: values.listen,
    stateDir: values['state-dir'] === undefined ? undefined : resolve(values['state-dir']),
  };
  const config = await loadConfig(configPath, overrides);
  const listen = splitHostPort(config.listen);
  const stateDir =
    config.stateDir ??
    process.env['STATE_DIRECTORY']?.split(':')[0] ??
    '/var/lib/tessia-task-runner';
  const runtimeDir = process.env['RUNTIME_DIRECTORY']?.split(':')[0] ?? join(stateDir, 'run');
  const log = createLogger(config.log.level);
  const fault = process.env['TESSIA_FAULT'];
  const faultPoint = FAULT_POINTS.find((point) => point === fault);
  if (fault !== undefined && faultPoint === undefined) throw new ConfigError(`TESSIA_FAULT: unknown fault point "${fault}"`);
  const runner = await startRunner({ config, stateDir, runtimeDir, listen, log, ...(faultPoint ? { faultPoint } : {}) });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down (tasks keep running)');
    void runner.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // systemctl reload: re-read the config; an invalid one is refused and the running one kept.
  process.on('SIGHUP', () => {
    loadConfig(configPath, overrides).then(
      (next) => runner.reload(next),
      (error: unknown) => log.error({ err: error }, `config reload refused, the running config is kept: ${(error as Error).message}`),
    );
  });
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'task':
      process.exitCode = await taskCommand(rest);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown command: ${command}\n${USAGE}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`tessia-task-runner: ${(error as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`tessia-task-runner: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
