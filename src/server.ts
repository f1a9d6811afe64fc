/**
 * Composes the runner: config → store → systemd client → task service → HTTP listener, and takes
 * it down in reverse order. Shutting down never stops a task.
 */
import { once } from 'node:events';
import { chmod, chown, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import { ConfigError } from './config/load.js';
import { requestPolicy } from './api/request-policy.js';
import { restartOnlyChanges } from './config/reloadable.js';
import { applyTls, assertSafeListener, boundHost, createListener, createUnixListener, loadAuth, readTlsMaterial } from './listener.js';
import { activationFds, socketKind } from './systemd/activation.js';
import type { Config } from './config/schema.js';
import { MachineRegistry } from './machines/registry.js';
import { SystemdClient, type ForgedSignal } from './systemd/client.js';
import { runningReaders } from './journal/reader.js';
import { RunnerMetrics } from './metrics.js';
import { createNotifier } from './systemd/notify.js';
import { TaskLogs } from './tasks/logs.js';
import { finishDeletes, recoverTasks } from './tasks/recovery.js';
import { TaskService, type StartHooks } from './tasks/service.js';
import { TaskStore } from './tasks/store.js';
import { StoreHealth } from './tasks/store-health.js';
import { UnitTracker } from './tasks/tracking.js';
import { TaskTransitions } from './tasks/transitions.js';
import { UsageSampler } from './tasks/usage-sampler.js';
import { Retention } from './tasks/retention.js';
import { mayStartUnit } from './tasks/unit-names.js';
import { StarterClient } from './starter/client.js';
import { unitControlFor } from './starter/unit-control.js';
import { ParameterHandoff } from './starter/parameter-handoff.js';
import { TaskUnitStarter } from './starter/task-unit-starter.js';
import { groupId } from './system-accounts.js';
import { settingsDigest } from './starter/protocol.js';
import { taskFilesFor } from './files/reader-choice.js';

export type { StartHooks };

export interface RunnerOptions {
  config: Config;
  /** Tests only: called at each durable step of a task start. */
  hooks?: StartHooks;
  stateDir: string;
  /** Files that live only while the runner runs (a tmpfs: RuntimeDirectory=). */
  runtimeDir: string;
  listen: { host: string; port: number };
  log: Logger;
}

export interface Runner {
  /**
   * Applies a new config (SIGHUP, `systemctl reload`): machines added or changed apply to new tasks,
   * tokens and TLS material to new requests and connections; running tasks are untouched. Rejects
   * (a ConfigError saying why) and keeps the config in force when a setting that needs a restart
   * changed, a file cannot be read, or a listener would be left unguarded.
   */
  reload(config: Config): Promise<string>;
  close(): Promise<void>;
}

export async function startRunner(options: RunnerOptions): Promise<Runner> {
  const { config, log } = options;
  const releasers: (() => void | Promise<void>)[] = [];
  const release = async () => {
    for (const releaser of releasers.reverse()) {
      try {
        await releaser();
      } catch (error) {
        log.warn({ err: error }, 'error while shutting down');
      }
    }
    releasers.length = 0;
  };
  try {
    const storeHealth = new StoreHealth(() => store.probeWrite(), log);
    const store = new TaskStore(options.stateDir, storeHealth);
    releasers.push(() => store.close());
    releasers.push(() => storeHealth.close());
    const systemd = await SystemdClient.connect(mayStartUnit);
    releasers.push(() => systemd.close());
    systemd.on('disconnected', (error) => log.error({ err: error }, 'lost the system bus connection: reconnecting'));
    systemd.on('reconnected', () => log.warn('connected to systemd again: refreshing every task'));
    const metrics = new RunnerMetrics({
      tasksByState: () => store.countByState(),
      journalReaders: () => runningReaders(),
      // Read at scrape time, once everything below exists.
      eventStreams: () => transitions.listenerCount('event'),
      dbusReconnects: () => systemd.reconnects,
      unitReads: () => systemd.unitReads,
      unitSignalsDropped: () => systemd.unitSignalsDropped,
      storeWritable: () => storeHealth.writable,
      storeWriteFailures: () => storeHealth.failedWrites,
    });
    const onForged = forgedSignalReport(log, (signal) => metrics.forgedSignals.inc({ member: signal.member }));
    systemd.on('forgedSignal', onForged);
    releasers.push(() => {
      systemd.off('forgedSignal', onForged);
    });
    // The settings this runner checks starts against: the starter builds units from the same ones.
    let unitSettings = settingsDigest(config);
    const starter = await taskStarter(config, systemd, options.runtimeDir, log, () => unitSettings);
    releasers.push(() => starter.close());
    const transitions = new TaskTransitions(store, log, options.hooks?.afterEvent);
    releasers.push(() => transitions.close());
    const usage = new UsageSampler(config.tasks.slice, config.tasks.usageSampleSec * 1000);
    releasers.push(() => usage.close());
    const files = taskFilesFor(config.tasks.filesSocket, log);
    releasers.push(() => files.close());
    // A DELETE is finished once its unit is gone: its working directory goes then, before its row.
    const removeDeleted = (taskId: string) => files.remove(taskId);
    const tracker = new UnitTracker(store, systemd, transitions, usage, log, removeDeleted, unitControlFor(starter, systemd, log));
    releasers.push(() => tracker.close());
    const tasks = new TaskService(
      store,
      systemd,
      tracker,
      transitions,
      new MachineRegistry(config.machines),
      {
        stopWaitMs: config.tasks.stopWaitSec * 1000,
        maxActiveTasks: config.limits.maxActiveTasks,
        maxActiveChecks: config.limits.maxActiveChecks,
        maxParameterBytes: config.limits.maxParameterBytes,
        starter,
        observer: {
          started: (seconds) => {
            metrics.starts.inc();
            metrics.startSeconds.observe(seconds);
          },
          startFailed: () => metrics.startFailures.inc(),
          checked: (outcome) => metrics.checks.inc({ outcome }),
          stopRequested: () => metrics.stops.inc(),
        },
        ...(options.hooks ? { hooks: options.hooks } : {}),
      },
      log,
    );
    releasers.push(() => tasks.close());
    await recoverTasks(store, systemd, tracker, transitions, log);
    // Only finished tasks are pruned: no process of theirs is left in the directory.
    const removeDirectory = async (taskId: string) => {
      await files.remove(taskId);
    };
    const retention = new Retention(store, removeDirectory, config.retention, log, {
      pruned: (reason, count) => metrics.pruned.inc({ reason }, count),
      swept: (seconds) => metrics.pruneSeconds.observe(seconds),
    });
    retention.start();
    releasers.push(() => retention.close());
    // Tasks that ended, and deletes that finished, while the store refused writes: recorded now.
    const onStoreWritable = () => {
      void tracker.refreshFollowed();
      void finishDeletes(store, tracker, log);
    };
    storeHealth.on('writable', onStoreWritable);
    releasers.push(() => {
      storeHealth.off('writable', onStoreWritable);
    });
    // A delete the bus outage interrupted is finished once systemd answers again.
    const onReconnected = () => void finishDeletes(store, tracker, log);
    systemd.on('reconnected', onReconnected);
    releasers.push(() => {
      systemd.off('reconnected', onReconnected);
    });
    const logs = new TaskLogs(tasks, { settleMs: config.logs.followSettleSec * 1000 }, log);
    const shuttingDown = new AbortController();
    // What a reload replaces (see reload below); requests read it as they come.
    let live = {
      config,
      auth: await loadAuth(config),
      policy: requestPolicy([options.listen.host], config.allowedHosts, config.allowedOrigins),
    };
    const tls = config.tls ? await readTlsMaterial(config.tls) : undefined;
    const app = createApp(
      tasks,
      {
        logs,
        files,
        auth: () => live.auth,
        policy: () => live.policy,
        limits: config.limits,
        heartbeatMs: config.logs.heartbeatSec * 1000,
        shuttingDown: shuttingDown.signal,
        onStream: (delta) => metrics.logStreams.inc(delta),
        health: {
          metrics: metrics.registry,
          readiness: () => {
            // Recovery is done before the listener exists: no request sees a runner that has not recovered.
            // Not ready while the store refuses writes (a full disk): a start would only get a 503.
            const checks = { dbus: systemd.connected, store: storeHealth.writable && store.writable() };
            return { ready: Object.values(checks).every(Boolean), checks };
          },
        },
      },
      log,
    );
    const servers: Server[] = [];
    /** The listeners made with TLS: a reload gives them the certificate it read. */
    const tlsServers: Server[] = [];
    /** Where TCP listeners are bound: each must stay guarded, also after a reload. */
    const tcpHosts: string[] = [];
    const activated = activationFds();
    if (activated.length > 0) {
      // Socket activation: systemd owns these listening sockets (the package's Unix socket, and any
      // TCP one an admin adds to the .socket unit); `unixSocket` is not used.
      // Listening on a passed socket is synchronous: its address is known at once, and it is checked
      // like `listen` before the event loop runs again, so no connection is accepted on an open door.
      // A Unix socket is served plain, whatever `tls` says: its mode guards it, and its callers get
      // auth.unixSocket (the admins' CLI speaks plain HTTP to it).
      const kinds = activated.map((fd) => socketKind(fd));
      const unknown = activated.filter((_fd, index) => kinds[index] === undefined);
      if (unknown.length > 0)
        throw new ConfigError(`socket activation: descriptors ${unknown.join(', ')} are neither TCP nor Unix sockets`);
      const passed = activated.map((fd, index) =>
        (kinds[index] === 'unix' ? createUnixListener(app) : createListener(tls, live.auth, app)).listen({ fd }),
      );
      for (const server of passed) releasers.push(() => closeServer(server));
      try {
        for (const [index, server] of passed.entries()) {
          if (kinds[index] === 'unix') continue;
          const host = boundHost(server);
          if (host === undefined) throw new ConfigError(`socket activation: descriptor ${activated[index]} has no TCP address`);
          assertSafeListener(host, config, live.auth, log, 'socket activation');
          tcpHosts.push(host);
          if (tls) tlsServers.push(server);
        }
      } catch (error) {
        for (const server of passed) server.close();
        throw error;
      }
      await Promise.all(passed.filter((server) => !server.listening).map((server) => once(server, 'listening')));
      servers.push(...passed);
      log.info({ fds: activated }, 'using the sockets systemd passed (socket activation)');
    }
    // `listen` too, unless systemd passed a TCP socket: then it owns the network side.
    if (tcpHosts.length === 0) {
      assertSafeListener(options.listen.host, config, live.auth, log);
      tcpHosts.push(options.listen.host);
      const server = await listenOn(createListener(tls, live.auth, app), { port: options.listen.port, host: options.listen.host });
      servers.push(server);
      releasers.push(() => closeServer(server));
      if (tls) tlsServers.push(server);
    }
    if (activated.length === 0 && config.unixSocket) {
      const unix = await listenOnUnixSocket(createUnixListener(app), config.unixSocket);
      servers.push(unix);
      releasers.push(() => closeServer(unix));
    }
    live.policy = requestPolicy(tcpHosts, config.allowedHosts, config.allowedOrigins);
    // First in the release order: streams end (resumably) and new requests get 503 at once.
    releasers.push(() => shuttingDown.abort());
    const where = servers
      .map((each) => {
        const bound = each.address();
        return typeof bound === 'string' ? bound : bound ? `${bound.address}:${bound.port}` : 'a passed socket';
      })
      .join(', ');
    log.info({ address: where, stateDir: options.stateDir }, 'listening');

    const notifier = createNotifier();
    const status = () => {
      const running = store.countActive();
      return `${running} task${running === 1 ? '' : 's'} running; listening on ${where}`;
    };
    await notifier.send({ READY: '1', STATUS: status() });
    let statusTimer: NodeJS.Timeout | undefined;
    transitions.on('changed', () => {
      statusTimer ??= setTimeout(() => {
        statusTimer = undefined;
        notifier.send({ STATUS: status() }).catch((error: unknown) => log.warn({ err: error }, 'sd_notify failed'));
      }, 1000);
    });
    const stopWatchdog = notifier.startWatchdog((error) => log.warn({ err: error }, 'watchdog ping failed'));
    releasers.splice(releasers.length - 1, 0, () => {
      stopWatchdog();
      clearTimeout(statusTimer);
      return notifier.send({ STOPPING: '1', STATUS: 'shutting down; tasks keep running' }).catch(() => {});
    });
    const reload = async (next: Config): Promise<string> => {
      const restartOnly = restartOnlyChanges(live.config, next);
      if (restartOnly.length > 0) {
        throw new ConfigError(
          `${restartOnly.join(', ')} cannot change without a restart (systemctl restart tessia-task-runner); nothing was applied`,
        );
      }
      // Everything read and checked before anything is applied: a reload applies all or nothing.
      const auth = await loadAuth(next);
      const material = next.tls ? await readTlsMaterial(next.tls) : undefined;
      for (const host of tcpHosts) assertSafeListener(host, next, auth, log, 'reload');
      const machines = new MachineRegistry(next.machines);
      if (material) for (const server of tlsServers) applyTls(server, material, auth);
      live = { config: next, auth, policy: requestPolicy(tcpHosts, next.allowedHosts, next.allowedOrigins) };
      tasks.replaceMachines(machines);
      if (starter instanceof TaskUnitStarter) starter.replaceSettings(unitSettingsOf(next));
      unitSettings = settingsDigest(next);
      log.level = next.log.level;
      const applied = `${auth.tokens.length} token${auth.tokens.length === 1 ? '' : 's'}${material ? ', the TLS certificate, key and CA read again' : ''}, machines ${Object.keys(next.machines).join(', ')} for new tasks`;
      log.info({ machines: Object.keys(next.machines), tokens: auth.tokens.map((token) => token.name) }, `config reloaded: ${applied}`);
      return `reloaded: ${applied}`;
    };
    return { reload, close: release };
  } catch (error) {
    await release();
    throw error;
  }
}

const unitSettingsOf = (config: Config) => ({
  machines: new MachineRegistry(config.machines),
  slice: config.tasks.slice,
  maxParameterBytes: config.limits.maxParameterBytes,
});

/**
 * Through the privileged starter when the config names its socket (the package does): the runner
 * then needs no right to start units. Else in this process, which must be allowed to (root).
 */
async function taskStarter(
  config: Config,
  systemd: SystemdClient,
  runtimeDir: string,
  log: Logger,
  settings: () => string,
): Promise<TaskUnitStarter | StarterClient> {
  if (config.tasks.starterSocket !== null) {
    log.info({ socket: config.tasks.starterSocket }, 'task units are started by the privileged starter');
    return new StarterClient(config.tasks.starterSocket, settings);
  }
  if (process.getuid?.() !== 0) {
    log.warn('tasks.starterSocket is not set and the runner is not root: starting a task needs the right to start any unit');
  }
  const handoff = new ParameterHandoff(join(runtimeDir, 'parameters'));
  await handoff.open();
  const starter = new TaskUnitStarter(systemd, handoff, unitSettingsOf(config));
  // In the background: starts need not wait for leftovers to stop.
  void starter.sweepChecks(log);
  return starter;
}

/** (Default: one warning a minute at most) */
const FORGED_WARNING_INTERVAL_MS = 60_000;

/**
 * Counts every forged signal, and warns at most once a minute (whoever sends them decides how
 * many): the first one's sender, and how many were dropped since the last warning.
 */
function forgedSignalReport(log: Logger, count: (signal: ForgedSignal) => void): (signal: ForgedSignal) => void {
  let lastWarning = Number.NEGATIVE_INFINITY;
  let unreported = 0;
  return (signal) => {
    count(signal);
    unreported += 1;
    const now = Date.now();
    if (now - lastWarning < FORGED_WARNING_INTERVAL_MS) return;
    lastWarning = now;
    log.warn(
      { sender: signal.sender, member: signal.member, path: signal.path, dropped: unreported },
      'dropped D-Bus signals that systemd did not send (forged by a local process?); see tessia_dbus_forged_signals_total',
    );
    unreported = 0;
  };
}

function listenOn(server: Server, where: { port: number; host: string } | { fd: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

async function listenOnUnixSocket(server: Server, socket: NonNullable<Config['unixSocket']>): Promise<Server> {
  await rm(socket.path, { force: true });
  await listenOn(server, { path: socket.path } as unknown as { fd: number });
  // The group first, then the mode that opens the socket to it.
  if (socket.group) {
    const gid = await groupId(socket.group);
    if (gid === undefined) throw new ConfigError(`unixSocket.group: no group "${socket.group}"`);
    await chown(socket.path, process.getuid?.() ?? 0, gid);
  }
  await chmod(socket.path, Number.parseInt(socket.mode, 8));
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // Connections turn idle as their streams end (with a resume point): close each as it does.
    const idle = setInterval(() => server.closeIdleConnections(), 25);
    // Slow clients do not hold shutdown: whatever is still open after 2 s is cut.
    const force = setTimeout(() => server.closeAllConnections(), 2000);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
