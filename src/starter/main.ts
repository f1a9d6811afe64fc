#!/usr/bin/env node
/**
 * tessia-task-runner-starter: the privileged part of the runner. It answers one request — "start
 * task T of machine M" — from the runner's user, over the socket systemd passes it
 * (tessia-task-runner-starter.socket), with a unit it builds from the root-owned config. Everything
 * else (HTTP, tracking, stopping task units, journals) stays in the unprivileged runner.
 *
 *   tessia-task-runner-starter [--config FILE] [--socket PATH]   (--socket: without socket activation)
 */
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfigPath, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { messageOf } from '../errors.js';
import { activationFds } from '../systemd/activation.js';
import { createLogger } from '../log.js';
import { MachineRegistry } from '../machines/registry.js';
import { SystemdClient } from '../systemd/client.js';
import { createNotifier } from '../systemd/notify.js';
import { isTaskUnit } from '../tasks/unit-names.js';
import { ParameterHandoff } from './parameter-handoff.js';
import { StarterServer } from './server.js';
import { TaskUnitStarter, type TaskUnitSettings } from './task-unit-starter.js';

/** Far above what the runner sends (its own in-flight cap): a bound, not a throttle. */
const MAX_IN_FLIGHT = 512;
const DRAIN_LIMIT_MS = 30_000;

const settingsOf = (config: Config): TaskUnitSettings => ({
  machines: new MachineRegistry(config.machines),
  slice: config.tasks.slice,
  maxParameterBytes: config.limits.maxParameterBytes,
});

async function listen(socketPath: string | undefined): Promise<Server> {
  const server = createServer();
  const [fd] = activationFds();
  if (fd !== undefined) {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd }, resolve));
  } else if (socketPath !== undefined) {
    await rm(socketPath, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
    // Root's alone when started by hand; the packaged socket unit gives the runner's group access.
    await chmod(socketPath, 0o600);
  } else {
    throw new Error('no socket: start it through tessia-task-runner-starter.socket, or give --socket PATH');
  }
  return server;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, socket: { type: 'string' } }, strict: true });
  const configPath = values.config ?? defaultConfigPath();
  let config = await loadConfig(configPath);
  const { log } = createLogger(config.log.level);
  const runtimeDir = process.env['RUNTIME_DIRECTORY']?.split(':')[0] ?? '/run/tessia-task-runner-starter';
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  const handoff = new ParameterHandoff(join(runtimeDir, 'parameters'));
  await handoff.open();
  const systemd = await SystemdClient.connect(isTaskUnit, { followUnits: false });
  const starter = new TaskUnitStarter(systemd, handoff, settingsOf(config));
  const reload = async (why: string) => {
    try {
      const next = await loadConfig(configPath);
      config = next;
      starter.replaceSettings(settingsOf(next));
      log.info(`config reloaded (${why}): machines apply to the next start`);
    } catch (error) {
      log.error(`config reload refused, the running config is kept: ${messageOf(error)}`);
    }
  };
  // The config is the runner's too: when the admin (or the runner's reload) finds it changed, the
  // next start here sees the change as well, without a reload of its own. One stat a start.
  let seen = configPath === undefined ? '' : await versionOf(configPath);
  const beforeStart = async () => {
    if (configPath === undefined) return;
    const version = await versionOf(configPath);
    if (version === seen) return;
    seen = version;
    await reload('the file changed');
  };
  const server = new StarterServer(
    starter,
    { maxParameterBytes: () => config.limits.maxParameterBytes, maxInFlight: MAX_IN_FLIGHT, beforeStart },
    log,
  );
  const listener = await listen(values.socket);
  server.serve(listener);
  const notifier = createNotifier();
  await notifier.send({ READY: '1', STATUS: 'starting task units for the runner' });
  log.info({ config: configPath ?? '(built-in defaults)' }, 'the privileged starter is ready');

  process.on('SIGHUP', () => void reload('SIGHUP'));
  const shutdown = () => {
    listener.close();
    const drained = Promise.race([server.drain(), new Promise((resolve) => setTimeout(resolve, DRAIN_LIMIT_MS).unref())]);
    void drained.then(() => {
      systemd.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

/** What says that the file changed: its modification time, size and inode. */
async function versionOf(path: string): Promise<string> {
  try {
    const { mtimeMs, size, ino } = await stat(path);
    return `${mtimeMs}:${size}:${ino}`;
  } catch {
    return 'missing';
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`tessia-task-runner-starter: ${messageOf(error)}\n`);
  process.exit(1);
});
