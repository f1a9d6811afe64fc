/**
 * Writes a long response the way Nagle's algorithm sends on a socket: text written while the
 * response has been quiet goes out at once; text written soon after a write is gathered and goes
 * out together a moment later (or once enough has gathered). The journal reader hands over entries
 * as they come out of journalctl's pipe, many small batches a second in a long read: one write each
 * was as many socket writes, compression flushes and wake-ups of the client. A followed line that
 * comes after a quiet spell is not held back.
 */
/** How long gathered text waits after the last write. */
export const GATHER_MS = 4;
/** Gathered text this long (in UTF-16 code units, as JS strings count) goes out without waiting. */
export const GATHER_MAX_LENGTH = 64 * 1024;

/** What the writer needs of a response (express's, or any Node writable). */
export interface GatheredResponse {
  write(text: string): boolean;
  end(): void;
  readonly writableEnded: boolean;
  on(event: 'drain', listener: () => void): unknown;
  /** compression() adds flush() where it compresses; a response it left alone has none. */
  flush?: () => void;
}

export interface StreamWriterOptions {
  /** (Default: GATHER_MS) */
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
  private readonly gatherMs: number;

  constructor(
    private readonly response: GatheredResponse,
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

  /** When text last went out to the response (ms, performance.now()'s clock). */
  get lastWriteAt(): number {
    return this.lastWrite;
  }

  /** Text is gathered, or the client has not taken what went out: a heartbeat would add nothing. */
  get hasUnsent(): boolean {
    return this.pending.length > 0 || this.draining !== undefined;
  }

  /** Resolves when the caller may write more (backpressure: the client has taken what was sent). */
  write(text: string): Promise<void> {
    this.pending.push(text);
    this.pendingLength += text.length;
    const wait = this.lastWrite + this.gatherMs - performance.now();
    if (this.pendingLength >= GATHER_MAX_LENGTH || wait <= 0) return this.writeGathered();
    this.timer ??= setTimeout(() => void this.writeGathered(), wait);
    return this.draining ?? Promise.resolve();
  }

  /** Writes what has gathered and `last`, then ends the response (a full one buffers the rest). */
  end(last?: string): void {
    clearTimeout(this.timer);
    if (last !== undefined) this.pending.push(last);
    if (this.pending.length > 0 && !this.response.writableEnded) this.response.write(this.pending.join(''));
    this.pending = [];
    this.response.end();
  }

  /** Writes what has gathered now, or, while the response is full, once it has drained. */
  private writeGathered(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.draining) return this.draining;
    if (this.pending.length === 0 || this.response.writableEnded) return Promise.resolve();
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    this.lastWrite = performance.now();
    const more = this.response.write(text);
    this.response.flush?.();
    if (more || this.signal.aborted) return Promise.resolve();
    this.draining = new Promise<void>((resolve) => (this.release = resolve)).then(() => {
      this.draining = undefined;
      return this.signal.aborted ? undefined : this.writeGathered();
    });
    return this.draining;
  }
}
