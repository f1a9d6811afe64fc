/**
 * Writing to journald over its native protocol (systemd's "Native Journal Protocol"): one datagram
 * per entry to /run/systemd/journal/socket, fields of our own included, so `journalctl FIELD=value`
 * finds the entry. The datagram is serialised here; it is sent with `unix-dgram` (Node has no Unix
 * datagram sockets), an optional addon that needs only a C++ compiler — not libsystemd.
 *
 * Without the addon, `openNativeJournal()` returns null and callers write to stdout instead, where
 * journald keeps the text and the `<N>` priority prefix but no fields of their own.
 */
import { createRequire } from 'node:module';

const JOURNAL_SOCKET = '/run/systemd/journal/socket';
/** Where to look for the identifier and priority of an entry too large to send. */
const HEAD_BYTES = 64 * 1024;
const CONGESTION = 1;
const EMSGSIZE = -90;

export type JournalFields = Record<string, string>;

export interface NativeJournal {
  /** Sends one entry (MESSAGE, PRIORITY and any fields). Never throws; an entry journald refuses is lost. */
  send(fields: JournalFields): void;
  /** Resolves once every entry sent so far has left this process (call before exiting). */
  flush(): Promise<void>;
}

interface UnixDgramSocket {
  send(buffer: Buffer, offset: number, length: number, path: string, callback: (error?: Error & { code?: number }) => void): void;
  once(event: 'writable', listener: () => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
}

/**
 * journald's field names are upper-case letters, digits and underscores, not starting with a digit;
 * those starting with `_` are journald's own and refused from clients.
 */
export function journalFieldName(name: string): string {
  const cleaned = name
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .replace(/^[_0-9]+/, '');
  return cleaned.slice(0, 64) || 'FIELD';
}

/** `NAME=value\n`, or for values with a newline `NAME\n<64-bit little-endian length><value>\n`. */
function serializeEntry(fields: JournalFields): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (!value.includes('\n')) {
      parts.push(Buffer.from(`${name}=${value}\n`, 'utf8'));
      continue;
    }
    const bytes = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`, 'utf8'), length, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** The native journal when the addon is installed and not turned off (TESSIA_LOG_TRANSPORT=stdout). */
export function openNativeJournal(environment: NodeJS.ProcessEnv = process.env, socketPath = JOURNAL_SOCKET): NativeJournal | null {
  if (environment['TESSIA_LOG_TRANSPORT'] === 'stdout') return null;
  let socket: UnixDgramSocket;
  try {
    const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    socket = unixDgram.createSocket('unix_dgram');
  } catch {
    return null;
  }
  return new DatagramJournal(socket, socketPath);
}

class DatagramJournal implements NativeJournal {
  /** Entries waiting while journald's socket is full (it lags fast writers); sent in order. */
  private readonly queue: Buffer[] = [];
  private waiting = false;
  private drained: (() => void)[] = [];

  constructor(
    private readonly socket: UnixDgramSocket,
    private readonly path: string,
  ) {
    socket.on('error', () => {
      // Reported per send below; an 'error' event without a listener would end the process.
    });
  }

  send(fields: JournalFields): void {
    this.queue.push(serializeEntry(fields));
    if (!this.waiting) this.sendQueued();
  }

  flush(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private sendQueued(): void {
    while (this.queue.length > 0) {
      const datagram = this.queue[0] as Buffer;
      let congested = false;
      this.socket.send(datagram, 0, datagram.length, this.path, (error) => {
        if (error?.code === CONGESTION) congested = true;
        // Larger than the socket's send buffer: say so in a short entry instead.
        else if (error?.code === EMSGSIZE) this.queue.splice(1, 0, truncated(datagram));
      });
      if (congested) {
        this.waiting = true;
        this.socket.once('writable', () => {
          this.waiting = false;
          this.sendQueued();
        });
        return;
      }
      this.queue.shift();
    }
    for (const resolve of this.drained.splice(0)) resolve();
  }
}

/** An entry too large for one datagram, as a short one saying so (its fields but not its text). */
function truncated(datagram: Buffer): Buffer {
  const text = datagram.subarray(0, HEAD_BYTES).toString('utf8');
  const identifier = /(?:^|\n)SYSLOG_IDENTIFIER=([^\n]*)/.exec(text)?.[1] ?? 'unknown';
  const priority = /(?:^|\n)PRIORITY=([0-7])/.exec(text)?.[1] ?? '6';
  return serializeEntry({
    MESSAGE: `[an entry of ${datagram.length} bytes, too large for the journal socket, left out]`,
    PRIORITY: priority,
    SYSLOG_IDENTIFIER: identifier,
    TESSIA_TRUNCATED: '1',
  });
}
