/**
 * sd_notify without a native module: systemd's own `systemd-notify`, which waits until the manager
 * has taken the message (so it is attributed to our unit). The unit needs NotifyAccess=all, since
 * the message comes from a child process. Does nothing outside a Type=notify unit.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Notifier {
  readonly enabled: boolean;
  send(state: Record<string, string>): Promise<void>;
  /** Starts WATCHDOG=1 pings at half of $WATCHDOG_USEC, when the unit sets WatchdogSec=. */
  startWatchdog(onError: (error: Error) => void): () => void;
}

export function createNotifier(environment: NodeJS.ProcessEnv = process.env): Notifier {
  const enabled = Boolean(environment['NOTIFY_SOCKET']);
  const send = async (state: Record<string, string>) => {
    if (!enabled) return;
    const assignments = Object.entries(state).map(([name, value]) => `${name}=${value.replace(/\n/g, ' ')}`);
    await execFileAsync('systemd-notify', assignments, { timeout: 10_000 });
  };
  return {
    enabled,
    send,
    startWatchdog(onError) {
      const usec = Number(environment['WATCHDOG_USEC']);
      const pid = environment['WATCHDOG_PID'];
      if (!enabled || !Number.isFinite(usec) || usec <= 0 || (pid !== undefined && Number(pid) !== process.pid)) {
        return () => {};
      }
      const timer = setInterval(() => void send({ WATCHDOG: '1' }).catch(onError), Math.max(100, usec / 2000));
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
