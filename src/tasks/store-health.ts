/**
 * Whether the task store takes writes, from what its writes did: the first that fails (a full disk,
 * an I/O error, a read-only file system) begins an episode, the first that succeeds ends it. One
 * warning at the start of an episode and one line when it ends, however many writes fail between:
 * each refused start is its client's 503, not a line of the log. During an episode the store is
 * probed with a write of its own (every 1 s, then less often, 30 s at most), so that it recovers by
 * itself, with nobody calling, once space returns; 'writable' then tells whoever has writes to do again.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { StoreUnwritableError } from './store-errors.js';

/** Delays between probes of an episode, the last repeated. (Default: 1 s up to 30 s) */
const PROBE_DELAYS_MS = [1000, 2000, 5000, 10_000, 30_000] as const;

export interface StoreWriteObserver {
  wrote(): void;
  failed(error: StoreUnwritableError): void;
}

interface Episode {
  since: number;
  failures: number;
  probes: number;
  timer: NodeJS.Timeout | undefined;
}

export class StoreHealth extends EventEmitter<{ writable: [] }> implements StoreWriteObserver {
  private episode: Episode | null = null;
  private closed = false;
  /** Writes the store refused since the runner started, probes included. */
  failedWrites = 0;

  constructor(
    /** One small write; throws when the store cannot take it (its failure comes back through failed()). */
    private readonly probe: () => void,
    private readonly log: Logger,
    private readonly probeDelaysMs: readonly number[] = PROBE_DELAYS_MS,
  ) {
    super();
  }

  /** False from a refused write until a write succeeds. */
  get writable(): boolean {
    return this.episode === null;
  }

  wrote(): void {
    const episode = this.episode;
    if (episode === null) return;
    this.episode = null;
    clearTimeout(episode.timer);
    this.log.info(
      { seconds: Math.round((Date.now() - episode.since) / 1000), failedWrites: episode.failures },
      'the task store takes writes again: starts are accepted, and the states it could not record are being recorded',
    );
    // After the write that ended the episode has returned to its caller, not inside it.
    setImmediate(() => this.emit('writable'));
  }

  failed(error: StoreUnwritableError): void {
    this.failedWrites += 1;
    if (this.episode) {
      this.episode.failures += 1;
      return;
    }
    this.episode = { since: Date.now(), failures: 1, probes: 0, timer: undefined };
    this.log.warn(
      { err: error, fault: error.fault },
      `${error.message}: starts, stops and deletes are refused (503 STORE_UNWRITABLE) and tasks that end keep their units ` +
        'until their state is recorded; the runner tries again by itself (free space under the state directory)',
    );
    this.scheduleProbe();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.episode?.timer);
    this.removeAllListeners();
  }

  private scheduleProbe(): void {
    const episode = this.episode;
    if (episode === null || this.closed) return;
    const delays = this.probeDelaysMs;
    const delay = delays[Math.min(episode.probes, delays.length - 1)] ?? 1000;
    episode.timer = setTimeout(() => {
      episode.probes += 1;
      try {
        // Success ends the episode (wrote()); failure counts (failed()) and the next probe follows.
        this.probe();
      } catch {
        if (this.episode === episode) this.scheduleProbe();
      }
    }, delay);
    episode.timer.unref();
  }
}
