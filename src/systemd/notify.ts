/**
 * sd_notify: READY, STATUS, STOPPING and watchdog pings to the service manager. As libsystemd's
 * sd_notify, one datagram to `$NOTIFY_SOCKET` from the runner's own process, through the optional
 * unix-dgram addon (../datagram-socket.ts). Without the addon, or for an address it cannot reach
 * (abstract, vsock), systemd's own `systemd-notify`, which waits until the manager has taken the
 * message (a child process: the unit needs NotifyAccess=all). The datagram matters under load: a
 * child costs the runner a fork of its whole address space each status update (bench/profile.ts,
 * 2026-11-29: ~2.5 ms of the runner's CPU a start, during sustained starts, was `spawn`).
 * Does nothing outside a Type=notify unit.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connectDatagramSocket, loadUnixDgram, type UnixDgram } from '../datagram-socket.js';

const execFileAsync = promisify(execFile);

export interface Notifier {
  readonly enabled: boolean;
  /** How messages leave: a datagram of the runner's own, or `systemd-notify`. */
  readonly transport: 'datagram' | 'systemd-notify';
  send(state: Record<string, string>): Promise<void>;
  /** Starts WATCHDOG=1 pings at half of $WATCHDOG_USEC, when the unit sets WatchdogSec=. */
  startWatchdog(onError: (error: Error) => void): () => void;
}

/** `unixDgram`: the addon, when loaded (by default: loaded here, null when it cannot be). */
export function createNotifier(
  environment: NodeJS.ProcessEnv = process.env,
  unixDgram: UnixDgram | null = loadUnixDgram().unixDgram,
): Notifier {
  const address = environment['NOTIFY_SOCKET'] ?? '';
  const enabled = address !== '';
  // A file system path: what unix-dgram connects to (an abstract `@name` or a `vsock:` address is not).
  const datagram = enabled && address.startsWith('/') && unixDgram !== null ? unixDgram : null;
  const sendNow = async (state: Record<string, string>) => {
    const assignments = Object.entries(state).map(([name, value]) => `${name}=${value.replace(/\n/g, ' ')}`);
    if (datagram && (await sendDatagram(datagram, address, assignments.join('\n')))) return;
    await execFileAsync('systemd-notify', assignments, { timeout: 10_000 });
  };
  // One message at a time, in order: a STATUS= waiting for room (or for systemd-notify) is not
  // overtaken by a newer one, nor STOPPING=1 by an older STATUS=.
  let previous: Promise<unknown> = Promise.resolve();
  const send = (state: Record<string, string>): Promise<void> => {
    if (!enabled) return Promise.resolve();
    const next = previous.then(() => sendNow(state));
    previous = next.catch(() => undefined);
    return next;
  };
  return {
    enabled,
    transport: datagram ? 'datagram' : 'systemd-notify',
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

/** How long a message waits for room on a full notify socket before systemd-notify is tried. */
const CONGESTED_WAIT_MS = 2_000;

/**
 * One message; false when it did not leave (no receiver, or its queue still full after
 * CONGESTED_WAIT_MS): the caller tries systemd-notify.
 */
async function sendDatagram(unixDgram: UnixDgram, path: string, message: string): Promise<boolean> {
  let writable: () => void = () => {};
  // Open only for the message: an open unix-dgram socket keeps the process alive.
  const socket = connectDatagramSocket(unixDgram, path, () => writable());
  if (!socket) return false;
  const datagram = Buffer.from(message, 'utf8');
  try {
    const deadline = Date.now() + CONGESTED_WAIT_MS;
    for (;;) {
      const outcome = socket.send(datagram);
      if (outcome !== 'congested') return outcome === 'sent';
      const waitMs = deadline - Date.now();
      if (waitMs <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        writable = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    socket.close();
  }
}
