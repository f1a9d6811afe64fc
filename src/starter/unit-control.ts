/**
 * The runner's stops, kills and resets of task units, done by the privileged starter: as root, they
 * cost systemd no polkit check, which nearly doubled a stop here for the runner's own user
 * (docs/benchmarks.md, TESSIA_BENCH=polkit). When the starter cannot (not reachable, busy, shutting
 * down, silent for ANSWER_WAIT_MS, or an older one during an upgrade, which knows no unit actions),
 * the runner's own call, which polkit's rule allows (units/60-tessia-task-runner.rules), and, after
 * a silence, for SILENT_STARTER_PAUSE_MS without asking: a stop never waits for the starter to come back.
 */
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { DISCONNECTED, SystemdError, type UnitControl } from '../systemd/client.js';
import { taskIdOf } from '../tasks/unit-names.js';
import { StarterClient } from './client.js';
import type { UnitAction } from './protocol.js';

const { SIGKILL } = constants.signals;
/** A StopUnit the starter takes is answered in milliseconds: past this, the runner acts itself. */
const ANSWER_WAIT_MS = 5000;
/** After a starter fell silent, how long the runner acts itself without asking it (no stop waits for it meanwhile). */
const SILENT_STARTER_PAUSE_MS = 30_000;

export class UnitControlByStarter implements UnitControl {
  /** Until then (performance.now()), the starter is not asked: it last fell silent. */
  private askAgainAt = 0;

  constructor(
    private readonly starter: Pick<StarterClient, 'controlUnit'>,
    /** The runner's own connection. */
    private readonly own: UnitControl,
    private readonly log: Logger,
    private readonly answerWaitMs = ANSWER_WAIT_MS,
    private readonly silentPauseMs = SILENT_STARTER_PAUSE_MS,
  ) {}

  stopUnit(unitName: string): Promise<void> {
    return this.act('stop', unitName, () => this.own.stopUnit(unitName));
  }

  killUnit(unitName: string, signal: number): Promise<void> {
    // The starter sends SIGKILL only, the one signal the runner sends itself.
    if (signal !== SIGKILL) return this.own.killUnit(unitName, signal);
    return this.act('kill', unitName, () => this.own.killUnit(unitName, signal));
  }

  resetFailedUnit(unitName: string): Promise<void> {
    return this.act('reset-failed', unitName, () => this.own.resetFailedUnit(unitName));
  }

  private async act(action: UnitAction, unitName: string, ownCall: () => Promise<void>): Promise<void> {
    const taskId = taskIdOf(unitName);
    if (taskId === null || performance.now() < this.askAgainAt) return ownCall();
    const asked = this.starter.controlUnit(action, taskId);
    // Answered after the wait: the runner acted already; the same action twice does no harm.
    asked.catch(() => undefined);
    const wait = new AbortController();
    try {
      const silent = sleep(this.answerWaitMs, true, { signal: wait.signal }).catch(() => false);
      if (await Promise.race([asked.then(() => false), silent])) {
        this.askAgainAt = performance.now() + this.silentPauseMs;
        throw new Error(`the starter did not answer within ${this.answerWaitMs} ms`);
      }
    } catch (error) {
      // systemd's own answer (NoSuchUnit, …): the same as this runner's call would get.
      if (error instanceof SystemdError && error.dbusName !== DISCONNECTED) throw error;
      // The starter could not, or was lost before its answer: these actions may be done twice.
      this.log.debug({ unit: unitName, action, err: error }, 'the starter did not act on the unit: the runner does');
      await ownCall();
    } finally {
      wait.abort();
    }
  }
}

/**
 * Who stops, kills and resets a runner's task units: the starter for an unprivileged runner (its own
 * calls wait for polkit's check), the runner's own connection for a root one (never checked) or
 * one that starts units itself.
 */
export function unitControlFor(starter: unknown, own: UnitControl, log: Logger, uid = process.getuid?.()): UnitControl {
  return starter instanceof StarterClient && uid !== 0 ? new UnitControlByStarter(starter, own, log) : own;
}
