#!/usr/bin/env node
import { ConfigError } from '../config/load.js';
import { messageOf } from '../errors.js';
import { asNativeAddonMismatch } from '../native-abi.js';
import { EXIT } from './exit-status.js';
import { StoreVersionError } from '../tasks/store-schema.js';
import { VERSION } from '../version.js';
import { reloadCommand } from './reload-command.js';
import { SERVE_USAGE, serve } from './serve.js';
import { taskCommand } from './task-commands.js';

const USAGE = SERVE_USAGE.replace(
  '\n\n',
  '\n       tessia-task-runner task <command> …   (tessia-task-runner task --help)\n       tessia-task-runner reload [--control PATH]   (tessia-task-runner reload --help)\n       tessia-task-runner --version\n\n',
);

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'task':
      process.exitCode = await taskCommand(rest);
      return;
    case 'reload':
      process.exitCode = await reloadCommand(rest);
      return;
    case '--version':
    case 'version':
      process.stdout.write(`tessia-task-runner ${VERSION}\n`);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown command: ${command}\n${USAGE}`);
      process.exitCode = EXIT.usage;
  }
}

// Exit status 2: the runner cannot start as configured or on the store it found, and starting it
// again as it is cannot help (the service unit's RestartPreventExitStatus=2 says so to systemd).
main(process.argv.slice(2)).catch((error: unknown) => {
  if (
    error instanceof ConfigError ||
    error instanceof StoreVersionError ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  ) {
    process.stderr.write(`tessia-task-runner: ${messageOf(error)}\n`);
    process.exit(EXIT.usage);
  }
  // The build record said so before any addon loaded, or an addon refused to load (no record, or a stale one).
  const mismatch = asNativeAddonMismatch(error);
  if (mismatch) {
    process.stderr.write(`tessia-task-runner: ${mismatch.message}\n`);
    process.exit(EXIT.nativeAddonMismatch);
  }
  process.stderr.write(`tessia-task-runner: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT.failed);
});
