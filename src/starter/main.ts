#!/usr/bin/env node
/**
 * tessia-task-runner-starter: the privileged part of the runner. It answers three requests — "start
 * task T of machine M", "check these parameters for machine M" (each with a unit it builds from the
 * root-owned config) and "stop, SIGKILL or reset task T's unit" (without polkit's check of the
 * runner's own call) — from the runner's user, over the socket systemd passes it
 * (tessia-task-runner-starter.socket). Everything else (HTTP, tracking, journals) stays in the
 * unprivileged runner.
 *
 *   tessia-task-runner-starter [--config FILE] [--socket PATH]   (--socket: without socket activation)
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfigPath, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { messageOf } from '../errors.js';
import { listenForRunner } from '../line-socket.js';
import { createLogger } from '../log.js';
import { MachineRegistry } from '../machines/registry.js';
import { SystemdClient } from '../systemd/client.js';
import { createNotifier } from '../systemd/notify.js';
import { mayStartUnit } from '../tasks/unit-names.js';
import { ParameterHandoff } from './parameter-handoff.js';
import { StarterServer } from './server.js';
import { StartRefused, TaskUnitStarter, type TaskUnitSettings } from './task-unit-starter.js';
import { STARTER_ERRORS, settingsDigest } from './protocol.js';

/** Far above what the runner sends (its own in-flight cap): a bound, not a throttle. */
const MAX_IN_FLIGHT = 512;
/** Checks among them: the runner's limits.maxActiveChecks is at most this (each holds a slot up to its timeout). */
const MAX_CHECKS_IN_FLIGHT = 64;
/** Stops, kills and resets among them: beyond, the runner makes its own call (polkit allows it). */
const MAX_UNIT_ACTIONS_IN_FLIGHT = 64;
const DRAIN_LIMIT_MS = 30_000;

const settingsOf = (config: Config): TaskUnitSettings => ({
  machines: new MachineRegistry(config.machines),
  slice: config.tasks.slice,
  maxParameterBytes: config.limits.maxParameterBytes,
});

/** Connections at once: the runner keeps one; a few more for a restart's overlap, and no more. */
const MAX_CONNECTIONS = 8;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, socket: { type: 'string' } }, strict: true });
  const configPath = values.config ?? defaultConfigPath();
  let config = await loadConfig(configPath);
  const { log, flush } = createLogger(config.log.level, { service: true });
  const runtimeDir = process.env['RUNTIME_DIRECTORY']?.split(':')[0] ?? '/run/tessia-task-runner-starter';
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  const handoff = new ParameterHandoff(join(runtimeDir, 'parameters'));
  await handoff.open();
  const systemd = await SystemdClient.connect(mayStartUnit, { followUnits: false });
  // As the runner says it: a start refused meanwhile (503) is explained in the starter's journal too.
  systemd.on('disconnected', (error) => log.error({ err: error }, 'lost the system bus connection: reconnecting'));
  systemd.on('reconnected', () => log.warn('connected to systemd again'));
  const starter = new TaskUnitStarter(systemd, handoff, settingsOf(config));
  // In the background: starts need not wait for leftovers to stop.
  void starter.sweepChecks(log);
  // Its settings are the runner's: each start carries the digest of the settings the runner
  // checked it against (the runner's config, as its last accepted reload left it). Another digest
  // than ours: the file is read again, and used if it is that version; if not (the admin changed it
  // and the runner has not accepted the change), the start is refused rather than built from
  // settings the runner never checked.
  let digest = settingsDigest(config);
  const beforeStart = async (wanted: string) => {
    if (wanted === digest) return;
    let next: Config;
    try {
      next = await loadConfig(configPath);
    } catch (error) {
      throw new StartRefused(STARTER_ERRORS.configMismatch, `the config the runner uses cannot be read again: ${messageOf(error)}`);
    }
    if (settingsDigest(next) !== wanted) {
      throw new StartRefused(
        STARTER_ERRORS.configMismatch,
        'the config file is not the one the runner uses (changed since its last reload): systemctl reload tessia-task-runner',
      );
    }
    config = next;
    digest = wanted;
    starter.replaceSettings(settingsOf(next));
    log.info('config read again: the runner uses this version');
  };
  const server = new StarterServer(
    starter,
    {
      maxParameterBytes: () => config.limits.maxParameterBytes,
      maxInFlight: MAX_IN_FLIGHT,
      maxChecksInFlight: MAX_CHECKS_IN_FLIGHT,
      maxUnitActionsInFlight: MAX_UNIT_ACTIONS_IN_FLIGHT,
      beforeStart,
    },
    log,
  );
  const listener = await listenForRunner(values.socket, 'tessia-task-runner-starter.socket', MAX_CONNECTIONS);
  server.serve(listener);
  const notifier = createNotifier();
  await notifier.send({ READY: '1', STATUS: 'starting task units for the runner' });
  log.info({ config: configPath ?? '(built-in defaults)' }, 'the privileged starter is ready');

  // Nothing to reload by itself: it takes the config the runner uses, at the next start.
  process.on('SIGHUP', () => log.info('SIGHUP: the starter reads the config when a start asks for the version the runner uses'));
  const shutdown = () => {
    listener.close();
    const drained = Promise.race([server.drain(), new Promise((resolve) => setTimeout(resolve, DRAIN_LIMIT_MS).unref())]);
    // What the last starts logged leaves before the process does (bounded by flush's own wait).
    void drained
      .then(flush)
      .catch(() => {})
      .then(() => {
        systemd.close();
        process.exit(0);
      });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`tessia-task-runner-starter: ${messageOf(error)}\n`);
  process.exit(1);
});
