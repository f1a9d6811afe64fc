/**
 * Composes the runner: config → store → systemd client → task service → HTTP listener, and takes
 * it down in reverse order. Shutting down never stops a task.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import { assertSafeListener, createListener, loadAuth } from './listener.js';
import type { Config } from './config/schema.js';
import { MachineRegistry } from './machines/registry.js';
import { SystemdClient } from './systemd/client.js';
import { createNotifier } from './systemd/notify.js';
import { TaskLogs } from './tasks/logs.js';
import { recoverTasks, type RecoveryReport } from './tasks/recovery.js';
import { TaskService, UNIT_PREFIX, type FaultPoint } from './tasks/service.js';
import { TaskStore } from './tasks/store.js';

export interface RunnerOptions {
  config: Config;
  /** Tests only (TESSIA_FAULT): die at this point of a task start. */
  faultPoint?: FaultPoint;
  stateDir: string;
  listen: { host: string; port: number };
  log: Logger;
}

export interface Runner {
  address: AddressInfo;
  recovery: RecoveryReport;
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
    const store = new TaskStore(options.stateDir);
    releasers.push(() => store.close());
    const systemd = await SystemdClient.connect(UNIT_PREFIX);
    releasers.push(() => systemd.close());
    systemd.on('disconnected', (error) => log.error({ err: error }, 'lost the system bus connection: reconnecting'));
    systemd.on('reconnected', () => log.warn('connected to systemd again: refreshing every task'));
    const tasks = new TaskService(
      store,
      systemd,
      new MachineRegistry(config.machines),
      {
        slice: config.tasks.slice,
        stopWaitMs: config.tasks.stopWaitSec * 1000,
        maxActiveTasks: config.limits.maxActiveTasks,
        maxParameterBytes: config.limits.maxParameterBytes,
        ...(options.faultPoint ? { faultPoint: options.faultPoint } : {}),
      },
      log,
    );
    releasers.push(() => tasks.close());
    const recovery = await recoverTasks(store, systemd, tasks, log);
    const logs = new TaskLogs(tasks, { settleMs: config.logs.followSettleSec * 1000 }, log);
    const shuttingDown = new AbortController();
    const auth = await loadAuth(config);
    assertSafeListener(options.listen.host, config, auth, log);
    const app = createApp(
      tasks,
      {
        logs,
        auth,
        limits: config.limits,
        heartbeatMs: config.logs.heartbeatSec * 1000,
        shuttingDown: shuttingDown.signal,
      },
      log,
    );
    const server = await createListener(config, auth, app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    releasers.push(() => closeServer(server));
    // First in the release order: streams end (resumably) and new requests get 503 at once.
    releasers.push(() => shuttingDown.abort());
    const address = server.address() as AddressInfo;
    log.info({ address: `${address.address}:${address.port}`, stateDir: options.stateDir }, 'listening');

    const notifier = createNotifier();
    const status = () => {
      const running = store.listActive().length;
      return `${running} task${running === 1 ? '' : 's'} running; listening on ${address.address}:${address.port}`;
    };
    await notifier.send({ READY: '1', STATUS: status() });
    let statusTimer: NodeJS.Timeout | undefined;
    tasks.on('changed', () => {
      statusTimer ??= setTimeout(() => {
        statusTimer = undefined;
        notifier.send({ STATUS: status() }).catch((error) => log.warn({ err: error }, 'sd_notify failed'));
      }, 1000);
    });
    const stopWatchdog = notifier.startWatchdog((error) => log.warn({ err: error }, 'watchdog ping failed'));
    releasers.splice(releasers.length - 1, 0, () => {
      stopWatchdog();
      clearTimeout(statusTimer);
      return notifier.send({ STOPPING: '1', STATUS: 'shutting down; tasks keep running' }).catch(() => {});
    });
    return { address, recovery, close: release };
  } catch (error) {
    await release();
    throw error;
  }
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
