/**
 * Writing to journald over its native protocol: one datagram per entry to
 * /run/systemd/journal/socket, fields of our own included, so `journalctl FIELD=value` finds the
 * entry. Sent with the optional `unix-dgram` addon (../datagram-socket.ts), not libsystemd.
 * Without the addon, `openNativeJournal()` returns null and callers write to stdout instead, where
 * journald keeps the text and the `<N>` priority prefix but no fields of their own.
 *
 * journald lags fast writers: when its queue is full, entries wait here, in order, up to a cap;
 * past it the newest are dropped and one warning entry says how many. When journald restarts, the
 * writer connects again. Nothing here throws into the caller.
 *
 * By default the socket is open only while entries wait, and closed in the turn of the event loop
 * after the last one left: an open unix-dgram socket keeps the process alive, and a program that
 * logs and returns must exit. With `keepOpen` (a service, which ends by exiting) it stays open
 * (connected again after journald restarts) until close(). While journald is congested, waiting
 * entries keep the process alive, as output to a slow reader does on journald's stdout stream;
 * `flush(timeoutMs)` bounds how long a caller waits before exiting anyway. While journald is unreachable they do not hold the process.
 */
import {
  connectDatagramSocket,
  largestDatagram,
  loadUnixDgram,
  type DatagramSocket,
  type UnixDgram,
  type UnixDgramMissing,
} from '../datagram-socket.js';
import { serializeWithin, type JournalFields } from './native-entry.js';
import { PRIORITIES } from './priority.js';

export type { JournalFields };
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
/** How long `flush()` waits for journald by default. */
export const FLUSH_TIMEOUT_MS = 5_000;
const RECONNECT_FIRST_MS = 50;
const RECONNECT_MAX_MS = 2_000;
/** Shrinking the datagram limit after EMSGSIZE stops here; an entry refused even then is dropped. */
const SMALLEST_DATAGRAM = 4096;

export interface NativeJournal {
  /** Queues one entry (MESSAGE, PRIORITY and any fields) and sends what it can now. Never throws. */
  send(fields: JournalFields): void;
  /**
   * Resolves true once every entry sent so far has left this process (journald has it), false when
   * `timeoutMs` passed first (Default: 5 s). Call it before `process.exit()`.
   */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Drops what still waits and closes the socket; later entries are dropped. */
  close(): void;
}

export interface NativeJournalOptions {
  /** (Default: /run/systemd/journal/socket) */
  socketPath?: string;
  /** Bytes of entries that may wait for journald; past it new ones are dropped. (Default: 8 MiB) */
  maxQueuedBytes?: number;
  /** The largest datagram sent. (Default: the send buffer less 32 bytes, 212 960 with Linux's defaults) */
  maxDatagramBytes?: number;
  /**
   * Keeps the socket open between entries, for a process that ends by exiting (a service): it then
   * lives, connected again after journald restarts, until close(). Opening and closing it around
   * each entry cost a service's entry about 0.05 ms of the call and 0.1 ms of CPU
   * (docs/benchmarks.md). (Default: false: closed in the turn after the last entry left, so a
   * program that logs and returns exits)
   */
  keepOpen?: boolean;
}

/** The native journal when the addon is installed and not turned off (TESSIA_LOG_TRANSPORT=stdout). */
export function openNativeJournal(environment: NodeJS.ProcessEnv = process.env, options: NativeJournalOptions = {}): NativeJournal | null {
  return tryNativeJournal(environment, options).journal;
}

/** Why there is no native journal: turned off, or unix-dgram's own reason. */
export interface NativeJournalOff {
  reason: 'turned-off' | UnixDgramMissing['reason'];
  detail: string;
}

/** Like openNativeJournal, saying why not. */
export function tryNativeJournal(
  environment: NodeJS.ProcessEnv = process.env,
  options: NativeJournalOptions = {},
): { journal: NativeJournal; off?: never } | { journal: null; off: NativeJournalOff } {
  if (environment['TESSIA_LOG_TRANSPORT'] === 'stdout') {
    return { journal: null, off: { reason: 'turned-off', detail: 'TESSIA_LOG_TRANSPORT=stdout' } };
  }
  const loaded = loadUnixDgram();
  if (!loaded.unixDgram) return { journal: null, off: loaded.missing };
  const journal = new DatagramJournal(loaded.unixDgram, {
    socketPath: options.socketPath ?? JOURNAL_SOCKET,
    maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
    maxDatagramBytes: options.maxDatagramBytes ?? largestDatagram(),
    keepOpen: options.keepOpen ?? false,
  });
  return { journal };
}

interface Waiting {
  fields: JournalFields;
  datagram: Buffer;
}

class DatagramJournal implements NativeJournal {
  private readonly queue: Waiting[] = [];
  private queuedBytes = 0;
  private socket: DatagramSocket | null = null;
  private congested = false;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_FIRST_MS;
  private idleClose: NodeJS.Immediate | undefined;
  private maxDatagramBytes: number;
  /** Set from the first entry over the cap until the queue has half drained: one gap, one report. */
  private dropped: { entries: number; bytes: number; identifier: string | undefined } | undefined;
  private readonly flushes = new Set<(drained: boolean) => void>();

  constructor(
    private readonly unixDgram: UnixDgram,
    private readonly options: Required<NativeJournalOptions>,
  ) {
    this.maxDatagramBytes = options.maxDatagramBytes;
  }

  send(fields: JournalFields): void {
    if (this.closed) return;
    try {
      const datagram = serializeWithin(fields, this.maxDatagramBytes);
      const room = this.dropped ? this.options.maxQueuedBytes / 2 : this.options.maxQueuedBytes;
      if (this.queuedBytes + datagram.length > room) {
        this.countDropped(fields, datagram.length);
        return;
      }
      this.reportDropped();
      this.enqueue({ fields, datagram });
      this.pump();
    } catch {
      this.countDropped(fields, 0); // a defect of ours; the report says an entry is missing
    }
  }

  flush(timeoutMs = FLUSH_TIMEOUT_MS): Promise<boolean> {
    if (this.queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (drained: boolean) => {
        clearTimeout(timer);
        this.flushes.delete(done);
        resolve(drained);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.flushes.add(done);
    });
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    clearTimeout(this.reconnectTimer);
    this.closeSocket();
    for (const done of [...this.flushes]) done(false);
  }

  private enqueue(waiting: Waiting): void {
    this.queue.push(waiting);
    this.queuedBytes += waiting.datagram.length;
  }

  private dequeue(): void {
    const sent = this.queue.shift();
    if (sent) this.queuedBytes -= sent.datagram.length;
  }

  /** Sends what waits, in order, until the queue is empty or journald cannot take more now. */
  private pump(): void {
    if (this.congested || this.reconnectTimer || this.closed) return;
    let reconnected = false;
    for (;;) {
      if (this.queue.length === 0) this.reportDropped();
      const head = this.queue[0];
      if (!head) break;
      this.socket ??= connectDatagramSocket(this.unixDgram, this.options.socketPath, () => this.writable());
      const outcome = this.socket ? this.socket.send(head.datagram) : 'disconnected';
      switch (outcome) {
        case 'sent':
          this.dequeue();
          this.reconnectDelay = RECONNECT_FIRST_MS;
          break;
        case 'congested':
          this.congested = true; // the socket emits 'writable' when journald has room
          return;
        case 'too-large':
          this.shrink(head);
          break;
        case 'disconnected':
          this.closeSocket();
          if (reconnected) return this.reconnectLater();
          reconnected = true; // journald restarted: its new socket is likely there already
          break;
        case 'refused':
          // Refused for a reason of its own (a security module?): drop it, and try the next one
          // later, so that a refusal of every datagram costs one a while, not a busy loop.
          this.dequeue();
          this.countDropped(head.fields, head.datagram.length);
          this.closeSocket();
          return this.reconnectLater();
        default: {
          const unreachable: never = outcome;
          throw new Error(`unknown send outcome ${String(unreachable)}`);
        }
      }
    }
    for (const done of [...this.flushes]) done(true);
    if (this.options.keepOpen) return;
    this.idleClose ??= setImmediate(() => {
      this.idleClose = undefined;
      if (this.queue.length === 0) this.closeSocket();
    });
  }

  private writable(): void {
    if (!this.congested) return;
    this.congested = false;
    this.pump();
  }

  /** Reconnects without holding the process: with journald gone, a program may still exit. */
  private reconnectLater(): void {
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.pump();
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  /** The socket's send buffer is smaller than we thought (a lowered net.core.wmem_default). */
  private shrink(head: Waiting): void {
    if (head.datagram.length <= SMALLEST_DATAGRAM) {
      this.dequeue();
      this.countDropped(head.fields, head.datagram.length);
      return;
    }
    this.maxDatagramBytes = Math.max(SMALLEST_DATAGRAM, Math.floor(head.datagram.length / 2));
    const smaller = serializeWithin(head.fields, this.maxDatagramBytes);
    this.queuedBytes += smaller.length - head.datagram.length;
    head.datagram = smaller;
  }

  private closeSocket(): void {
    this.socket?.close();
    this.socket = null;
    this.congested = false;
  }

  private countDropped(fields: JournalFields, bytes: number): void {
    this.dropped ??= { entries: 0, bytes: 0, identifier: undefined };
    this.dropped.entries += 1;
    this.dropped.bytes += bytes;
    this.dropped.identifier = fields['SYSLOG_IDENTIFIER'] ?? this.dropped.identifier;
  }

  /** Queues the warning for entries dropped so far, where they are missing (beyond the cap). */
  private reportDropped(): void {
    if (!this.dropped) return;
    const { entries, bytes, identifier } = this.dropped;
    this.dropped = undefined;
    const fields: JournalFields = {
      MESSAGE: `${entries} journal entries (${bytes} bytes) dropped: journald did not keep up, and ${this.options.maxQueuedBytes} bytes were waiting already`,
      PRIORITY: String(PRIORITIES.warning),
      ...(identifier === undefined ? {} : { SYSLOG_IDENTIFIER: identifier }),
      TESSIA_DROPPED_ENTRIES: String(entries),
      TESSIA_DROPPED_BYTES: String(bytes),
    };
    this.enqueue({ fields, datagram: serializeWithin(fields, this.maxDatagramBytes) });
  }
}
