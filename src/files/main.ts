#!/usr/bin/env node
/**
 * tessia-task-runner-files: reads tasks' working directories for the runner, whose own user may
 * not (each task's user owns its directory, /var/lib/private is root's). It answers three requests
 * — list task T's files, read one, remove T's directory — over the socket systemd passes it
 * (tessia-task-runner-files.socket), with CAP_DAC_READ_SEARCH (and, to remove, CAP_DAC_OVERRIDE and
 * CAP_FOWNER) in a mount namespace that holds nothing else of the host worth reading.
 *
 *   tessia-task-runner-files [--socket PATH]   (--socket: without socket activation)
 */
import { parseArgs } from 'node:util';
import { messageOf } from '../errors.js';
import { listenForRunner } from '../line-socket.js';
import { createLogger } from '../log.js';
import { FilesServer } from './server.js';
import { TaskDirectories } from './task-directories.js';

/** Reads and listings at once, all runners together (each a connection): a bound, not a throttle. */
const MAX_CONNECTIONS = 256;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { socket: { type: 'string' } }, strict: true });
  const { log } = createLogger(process.env['TESSIA_LOG_LEVEL'] ?? 'info', { service: true });
  const server = new FilesServer(new TaskDirectories(), log);
  const listener = await listenForRunner(values.socket, 'tessia-task-runner-files.socket', MAX_CONNECTIONS);
  server.serve(listener);
  log.info('the files service is ready');
  const shutdown = () => {
    listener.close();
    server.close();
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`tessia-task-runner-files: ${messageOf(error)}\n`);
  process.exit(1);
});
