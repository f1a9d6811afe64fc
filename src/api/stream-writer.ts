/**
 * Writes a long response the way Nagle's algorithm sends on a socket: text written while the
 * response is idle goes out at once; text written soon after a write is gathered and goes out
 * together a moment later (or when enough has gathered). journalctl hands its output over in 4 KiB
 * pieces, so a bulk log read was one socket write (and one read by the client) per few entries: at
 * 100 000 entries, ~12 000 of each. A followed line that comes after a quiet spell is not held back.
 */
import { once } from 'node:events';
import type { Response } from 'express';

/** How long gathered text waits after the last write. */
export const GATHER_MS = 4;
/** Gathered text this long goes out without waiting. */
export const GATHER_MAX_CHARS = 64 * 1024;

export class StreamWriter {
  private pending: string[] = [];
  private pendingChars = 0;
  private lastWrite = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** Set while the response's buffer is full: the writer's callers wait for it. */
  private draining: Promise<void> | undefined;

  constructor(
    private readonly response: Response,
    private readonly signal: AbortSignal,
  ) {}

  /** When the response last had text written to it (ms, performance clock). */
  get lastWriteAt(): number {
    return this.lastWrite;
  }

  /** Resolves when the caller may write more (backpressure: the client has taken what was sent). */
  write(text: string): Promise<void> {
    this.pending.push(text);
    this.pendingChars += text.length;
    const wait = this.lastWrite + GATHER_MS - performance.now();
    if (this.pendingChars >= GATHER_MAX_CHARS || wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), wait);
    return this.draining ?? Promise.resolve();
  }

  /** Writes what has gathered now (or, while the response is full, once it has drained). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.draining) return this.draining;
    if (this.pending.length === 0 || this.response.writableEnded) return Promise.resolve();
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    this.lastWrite = performance.now();
    const more = this.response.write(text);
    // compression() adds flush() where it compresses; a response it left alone has none.
    (this.response as { flush?: () => void }).flush?.();
    if (more || this.signal.aborted) return Promise.resolve();
    this.draining = once(this.response, 'drain', { signal: this.signal }).then(
      () => {
        this.draining = undefined;
        return this.flush();
      },
      () => {
        this.draining = undefined;
      },
    );
    return this.draining;
  }

  /** Writes what has gathered, then ends the response (a full one buffers the rest). */
  end(): void {
    clearTimeout(this.timer);
    if (this.pending.length > 0 && !this.response.writableEnded) this.response.write(this.pending.join(''));
    this.pending = [];
    this.response.end();
  }
}
