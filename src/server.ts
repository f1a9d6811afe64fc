/**
 * Composes the runner: config → store → systemd client → task service → HTTP listener, and takes
 * it down in reverse order. Shutting down never stops a task.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import type { Config } from './config/schema.js';
import { MachineRegistry } from './machines/registry.js';
import { SystemdClient } from './systemd/client.js';
import { TaskLogs } from './tasks/logs.js';
import { TaskService, UNIT_PREFIX } from './tasks/service.js';
import { TaskStore } from './tasks/store.js';

export interface RunnerOptions {
  config: Config;
  stateDir: string;
  listen: { host: string; port: number };
  log: Logger;
}

export interface Runner {
  address: AddressInfo;
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
    systemd.on('disconnect', (error) => log.error({ err: error }, 'lost the system bus connection'));
    const tasks = new TaskService(
      store,
      systemd,
      new MachineRegistry(config.machines),
      { slice: config.tasks.slice, stopWaitMs: config.tasks.stopWaitSec * 1000 },
      log,
    );
    releasers.push(() => tasks.close());
    await tasks.resume();
    const logs = new TaskLogs(tasks, { settleMs: config.logs.followSettleSec * 1000 }, log);
    const server = createServer(createApp(tasks, { logs, heartbeatMs: config.logs.heartbeatSec * 1000 }, log));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    releasers.push(() => closeServer(server));
    const address = server.address() as AddressInfo;
    log.info({ address: `${address.address}:${address.port}`, stateDir: options.stateDir }, 'listening');
    return { address, close: release };
  } catch (error) {
    await release();
    throw error;
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // Streams and slow clients do not hold shutdown: they can resume where they were.
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
}
