/**
 * Writes a long response the way Nagle's algorithm sends on a socket: text written while the
 * response has been quiet goes out at once; text written soon after a write is gathered and goes
 * out together a moment later (or once enough has gathered). The journal reader hands over the
 * entries of each read of journalctl's pipe (a few, when journalctl writes 4 KiB at a time; a burst
 * of a followed task, line by line): one write each was as many socket writes, compression flushes
 * and wake-ups of the client. A followed line that comes after a quiet spell is not held back.
 */
/** How long gathered text waits after the last write. */
export const GATHER_MS = 4;
/** Gathered text this long (in UTF-16 code units, as JS strings count) goes out without waiting. */
export const GATHER_MAX_LENGTH = 64 * 1024;

/** What the writer needs of a response (express's, or any Node writable). */
export interface WritableResponse {
  write(text: string): boolean;
  end(): void;
  readonly writableEnded: boolean;
  on(event: 'drain', listener: () => void): unknown;
  /** compression() adds flush(): it writes out what zlib holds (nothing, where it does not compress). */
  flush?: () => void;
}

export interface StreamWriterOptions {
  /** (Default: 4 ms, GATHER_MS) */
  gatherMs?: number;
}

export class StreamWriter {
  private pending: string[] = [];
  private pendingLength = 0;
  private lastWrite = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** Set while the response's buffer is full: the writer's callers wait for it. */
  private draining: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private ended = false;
  private readonly gatherMs: number;
  private readonly created = performance.now();

  constructor(
    private readonly response: WritableResponse,
    private readonly signal: AbortSignal,
    options: StreamWriterOptions = {},
  ) {
    this.gatherMs = options.gatherMs ?? GATHER_MS;
    // One listener for the stream's life: compression() hands 'drain' listeners to its zlib stream and
    // cannot take them back, so a listener a wait (events.once) would stay behind, one each time.
    const released = () => {
      const release = this.release;
      this.release = undefined;
      release?.();
    };
    response.on('drain', released);
    signal.addEventListener('abort', released, { once: true });
  }

  /** Text is gathered, or the client has not taken what went out. */
  get hasUnsent(): boolean {
    return this.pending.length > 0 || this.draining !== undefined;
  }

  /**
   * Nothing has gone out for `ms` (since the writer was made: the headers had just gone), and nothing
   * waits to: a heartbeat is due. Not while the client has not taken what was sent: they would pile up.
   */
  isQuietFor(ms: number): boolean {
    return !this.hasUnsent && performance.now() - Math.max(this.created, this.lastWrite) >= ms;
  }

  /** Resolves when the caller may write more (backpressure: the client has taken what was sent). */
  write(text: string): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.pending.push(text);
    this.pendingLength += text.length;
    const wait = this.lastWrite + this.gatherMs - performance.now();
    if (this.pendingLength >= GATHER_MAX_LENGTH || wait <= 0) return this.writeGathered();
    this.timer ??= setTimeout(() => void this.writeGathered(), wait);
    return this.draining ?? Promise.resolve();
  }

  /** Writes what has gathered and `last`, then ends the response (a full one buffers the rest). */
  end(last?: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (last !== undefined) this.pending.push(last);
    if (this.pending.length > 0 && !this.response.writableEnded) this.response.write(this.pending.join(''));
    this.pending = [];
    this.pendingLength = 0;
    this.response.end();
  }

  /** Writes what has gathered now, or, while the response is full, once it has drained. */
  private writeGathered(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.draining) return this.draining;
    // Aborted (client gone, or shutting down): end() writes what is left, the last line after it.
    if (this.pending.length === 0 || this.signal.aborted || this.response.writableEnded) return Promise.resolve();
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    this.lastWrite = performance.now();
    const more = this.response.write(text);
    this.response.flush?.();
    if (more) return Promise.resolve();
    this.draining = new Promise<void>((resolve) => (this.release = resolve)).then(() => {
      this.draining = undefined;
      return this.writeGathered();
    });
    return this.draining;
  }
}
