/**
 * When systemd queued and ended each unit's start job, as one more bus connection of the bench sees
 * systemd's `JobNew` and `JobRemoved` (TESSIA_BENCH=ab): a start then splits into the time before
 * systemd has its job (the caller's path: HTTP, the runner, the starter, the call), systemd's job,
 * and the time from the job's end to the answer. Every side's signals reach this connection the same
 * way, so their delivery costs each side alike.
 */
import { performance } from 'node:perf_hooks';
import { SystemBus, type BusSignal } from '../src/systemd/bus.js';
import { MANAGER, SYSTEMD_NAME } from '../src/systemd/signals.js';
import { percentile, round } from './stats.js';

const jobRule = (member: 'JobNew' | 'JobRemoved') => `type='signal',sender='${SYSTEMD_NAME}',interface='${MANAGER}',member='${member}'`;

export interface StartPhases {
  /** From the request to systemd's JobNew of the unit. */
  untilJobNewMs: number;
  /** JobNew to JobRemoved: systemd's start job. */
  jobMs: number;
  /** From JobRemoved to the answer. */
  afterJobMs: number;
}

export class JobTimeline {
  /** The first JobNew and the first JobRemoved after it, by unit, at the moment this process read them. */
  private readonly seen = new Map<string, { jobNew: number; jobRemoved?: number }>();

  private constructor(private readonly bus: SystemBus) {
    bus.on('signal', this.onSignal);
  }

  static async connect(): Promise<JobTimeline> {
    const bus = await SystemBus.connect();
    await bus.addMatch(jobRule('JobNew'));
    await bus.addMatch(jobRule('JobRemoved'));
    return new JobTimeline(bus);
  }

  /** A start's phases (and forgets the unit); null when either signal was not seen. */
  phases(unit: string, began: number, answered: number): StartPhases | null {
    const seen = this.seen.get(unit);
    this.seen.delete(unit);
    if (seen?.jobRemoved === undefined) return null;
    return { untilJobNewMs: seen.jobNew - began, jobMs: seen.jobRemoved - seen.jobNew, afterJobMs: answered - seen.jobRemoved };
  }

  close(): void {
    this.bus.close();
  }

  private readonly onSignal = (signal: BusSignal): void => {
    if (signal.interface !== MANAGER) return;
    const unit = signal.body[2];
    if (typeof unit !== 'string') return;
    if (signal.member === 'JobNew' && !this.seen.has(unit)) this.seen.set(unit, { jobNew: performance.now() });
    else if (signal.member === 'JobRemoved') {
      const seen = this.seen.get(unit);
      if (seen && seen.jobRemoved === undefined) seen.jobRemoved = performance.now();
    }
  };
}

/** The p50 of each phase over a side's starts. */
export function phasesP50(all: StartPhases[]): StartPhases & { starts: number } {
  const p50 = (pick: (phases: StartPhases) => number) => round(percentile(all.map(pick), 50), 2);
  return {
    starts: all.length,
    untilJobNewMs: p50((phases) => phases.untilJobNewMs),
    jobMs: p50((phases) => phases.jobMs),
    afterJobMs: p50((phases) => phases.afterJobMs),
  };
}
