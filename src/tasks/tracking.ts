/**
 * Unit tracking: follows each task's unit through systemd's signals, moves the task to the state
 * that follows (systemd is the truth while the unit exists), and lets systemd collect the unit once
 * its result is recorded. One record per followed unit, and only for an active task: none is kept
 * once the unit is collected, or once its task is finished or gone from the store.
 *
 * A state the store cannot take (a full disk) is not lost: the unit is not collected (systemd keeps
 * its result, RemainAfterExit=), and refreshFollowed() reads it again once the store takes writes.
 * Only systemd's exact CPU time, written after the end, is given up then (recordSystemdCpu).
 */
import { setImmediate as afterIo } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  SERVICE_INTERFACE,
  SystemdError,
  UNIT_INTERFACE,
  type SystemdClient,
  type UnitChange,
  type UnitControl,
  type UnitSnapshot,
} from '../systemd/client.js';
import { ExitCode, TaskState, isFinished, type TaskRecord, type TaskUsage } from './model.js';
import { mapUnitStatus, type MappedStatus, type UnitStatus } from './state-mapping.js';
import type { TaskPatch, TaskStore } from './store.js';
import { StoreUnwritableError } from './store-errors.js';
import { isoFromMicros } from './time.js';
import type { TaskTransitions } from './transitions.js';
import type { UsageSampler } from './usage-sampler.js';
import { taskIdOf } from './unit-names.js';

interface TrackedUnit {
  /**
   * What the unit's PropertiesChanged signals said last: its state without reading it back, and the
   * result of a unit collected before it could be read.
   */
  signalled: SignalledUnit;
  /**
   * The signals tell the unit's whole state as it is now: both interfaces have been signalled since
   * it was followed, the Unit one last (systemd signals the Service interface first, then the Unit
   * one, for each change). Cleared when changes may have gone unseen (a start whose end this
   * connection did not see).
   */
  signalsCurrent: boolean;
  /** A change's Service signal came, its Unit signal not yet: a read now would be one the signal makes needless. */
  midChange: boolean;
  /** Reads of it that failed in a row, and the next one's timer (see retryLater). */
  failedReads: number;
  retry: NodeJS.Timeout | undefined;
  /** Read the unit back at the next refresh: changes may have gone unseen (a start whose end this connection did not see). */
  mustRead: boolean;
  /** The read under way; a change signalled meanwhile sets `again`, and the unit is read once more. */
  refreshing: Promise<void> | null;
  again: boolean;
  /** A read is scheduled for the end of this burst of signals. */
  scheduled: boolean;
  /** Its start job is under way: the lifecycle settles the task, then asks for a read (started()). */
  starting: boolean;
  /** The next read catches up with changes nobody watched (a restart, a lost bus): its events say so. */
  catchingUp: boolean;
}

/** After a failed read of a unit, the next one (then every 30 s while it fails). */
const READ_RETRY_DELAYS_MS = [1000, 2000, 5000, 10_000, 30_000];

export class UnitTracker {
  private readonly units = new Map<string, TrackedUnit>();
  private closed = false;
  private readonly onUnitChanged = (change: UnitChange) => this.signalled(change);
  // Changes while the bus was gone (or before a refused match rule) were never seen: read every active task again.
  private readonly onReconnected = () => void this.refreshActive();

  constructor(
    private readonly store: TaskStore,
    private readonly systemd: SystemdClient,
    private readonly transitions: TaskTransitions,
    private readonly usage: UsageSampler,
    private readonly log: Logger,
    /** Removes a deleted task's working directory, before its row goes. */
    private readonly removeDirectory?: (taskId: string) => Promise<unknown>,
    /** Who stops, kills and resets task units: this connection, or the privileged starter. */
    readonly control: UnitControl = systemd,
  ) {
    systemd.on('unitChanged', this.onUnitChanged);
    systemd.on('reconnected', this.onReconnected);
    systemd.on('signalsMissed', this.onReconnected);
  }

  /**
   * Follows a unit's signals from now on: call before starting it (`starting`: see started()).
   * Only the unit of an active task is followed; returns whether this one is.
   */
  track(unit: string, starting = false): boolean {
    if (this.units.has(unit)) return true;
    // A finished task's unit has nothing more to tell (it is collected); an unknown one is not ours.
    if (this.closed || !this.isActive(unit)) return false;
    this.units.set(unit, {
      signalled: {},
      signalsCurrent: false,
      midChange: false,
      mustRead: false,
      failedReads: 0,
      retry: undefined,
      refreshing: null,
      again: false,
      scheduled: false,
      starting,
      catchingUp: false,
    });
    this.systemd.watch(unit);
    if (!starting) this.usage.follow(unit);
    return true;
  }

  /**
   * The start job is done and its result handled: the unit's changes move its task from now on.
   * `signalsSeen`: this connection saw the job end, so the signals tell the unit's state at its end;
   * when it did not (the default: the error paths), the next refresh reads the unit.
   */
  started(unit: string, signalsSeen = false): void {
    const tracked = this.units.get(unit);
    if (!tracked) return;
    tracked.starting = false;
    // The start's answer must be exact: whatever the signals leave unsure (this connection did not see
    // the job end, a change half signalled, a unit still activating by its signals) is read back.
    const { activeState } = tracked.signalled;
    const told = signalsSeen && tracked.signalsCurrent && !tracked.midChange && activeState !== undefined && activeState !== 'activating';
    if (!told) tracked.mustRead = true;
    this.usage.follow(unit, 'soon');
  }

  untrack(unit: string): void {
    clearTimeout(this.units.get(unit)?.retry);
    this.units.delete(unit);
    this.systemd.unwatch(unit);
    this.usage.forget(unit);
  }

  /** What a followed unit uses now (null: not followed, or its cgroup cannot be read). */
  usageNow(unit: string): TaskUsage | null {
    return this.units.has(unit) ? this.usage.read(unit) : null;
  }

  /** Follows an active task's unit again (after a restart of the runner or of the bus). */
  async reattach(task: TaskRecord): Promise<void> {
    if (this.watchAgain(task)) await this.refresh(task.unit);
  }

  /**
   * Follows an active task's unit again without reading it yet: its next read catches up with what
   * nobody watched. Recovery watches every unit before it lists them, then reads only those the
   * listing does not settle (and says confirmed() of the others). Returns whether it is followed.
   */
  watchAgain(task: TaskRecord): boolean {
    if (!this.track(task.unit)) return false;
    const tracked = this.units.get(task.unit);
    if (tracked) {
      tracked.catchingUp = true;
      // Changes went unsignalled (a lost bus, a restart): what the signals said before tells nothing
      // now, until a change's Service and Unit signals come again.
      tracked.signalled = {};
      tracked.signalsCurrent = false;
      tracked.midChange = false;
    }
    return true;
  }

  /** systemd has the unit as its task records it (recovery's listing): there is nothing to catch up with. */
  confirmed(unit: string): void {
    const tracked = this.units.get(unit);
    if (tracked) tracked.catchingUp = false;
  }

  async refreshActive(): Promise<void> {
    await Promise.all(this.store.listActive().map((task) => this.reattach(task)));
  }

  /**
   * Reads every followed unit again: after the store refused writes, the changes it could not
   * record (a task that ended meanwhile gets its real result, from the unit systemd kept).
   */
  async refreshFollowed(): Promise<void> {
    await Promise.all([...this.units.keys()].map((unit) => this.refresh(unit)));
  }

  /**
   * Reads a followed unit from systemd and moves its task to the state that follows; one read at a
   * time per unit, and one more if a change came during it. A unit not followed (collected, or its
   * task finished or unknown) is not read, nor followed again: reattach() is for active tasks.
   */
  refresh(unit: string): Promise<void> {
    const tracked = this.units.get(unit);
    if (!tracked || tracked.starting) return Promise.resolve();
    if (tracked.refreshing) {
      tracked.again = true;
      return tracked.refreshing;
    }
    const work = (async () => {
      try {
        do {
          tracked.again = false;
          try {
            await this.refreshOnce(unit, tracked);
          } catch (error) {
            // The store's refusals are logged once for all (StoreHealth), and done again by refreshFollowed().
            if (error instanceof StoreUnwritableError) this.log.debug({ unit, err: error }, 'could not record the state of a task unit');
            else {
              this.log.warn({ unit, err: error }, 'could not read the state of a task unit: reading it again shortly');
              // systemd did not answer (busy, the bus gone): a later read may; a bug of ours would not.
              if (error instanceof SystemdError) this.retryLater(unit, tracked);
            }
          }
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- refresh() sets it during the await
        } while (tracked.again && this.units.get(unit) === tracked);
      } finally {
        // In the same step as the last look at `again`: a refresh asked for after it starts a read of its own.
        tracked.refreshing = null;
      }
    })();
    tracked.refreshing = work;
    return work;
  }

  /**
   * A read that failed (no reply from a busy systemd, a lost bus) is done again: an ended unit sends
   * no more signals, so nothing else would move its task. Backs off; stops once the unit is not followed.
   */
  private retryLater(unit: string, tracked: TrackedUnit): void {
    if (tracked.retry) return;
    const delayMs = READ_RETRY_DELAYS_MS[Math.min(tracked.failedReads, READ_RETRY_DELAYS_MS.length - 1)] ?? 0;
    tracked.failedReads += 1;
    // Read back, not taken from the signals: what failed may have been the signals' one Get.
    tracked.mustRead = true;
    tracked.retry = setTimeout(() => {
      tracked.retry = undefined;
      if (this.units.get(unit) === tracked) void this.refresh(unit);
    }, delayMs).unref();
  }

  /**
   * The result is recorded: let systemd garbage-collect the unit, and drop a deleted task's row —
   * only once systemd has let the unit go, so the store never forgets a unit that is still there
   * (a delete left unfinished is finished by finishDeletes, recovery.ts).
   */
  async collect(taskId: string, unit: string, known?: UnitSnapshot | null): Promise<void> {
    // Not followed from here on, before the StopUnit: its collection's signals are not sent here.
    this.untrack(unit);
    let released = false;
    try {
      released = await this.systemd.collectUnit(unit, known ?? undefined, this.control);
      if (!released) this.log.warn({ taskId, unit }, 'a finished task unit still has processes: left alone');
    } catch (error) {
      this.log.warn({ taskId, err: error }, 'could not collect a finished task unit');
    }
    if (released && this.store.find(taskId)?.forgotten) {
      try {
        // The directory first: a delete whose directory could not go keeps its (hidden) row, and
        // is finished again at the next start or reconnect (finishDeletes).
        await this.removeDirectory?.(taskId);
      } catch (error) {
        this.log.warn({ taskId, err: error }, "could not remove a deleted task's working directory; trying again later");
        return;
      }
      try {
        this.store.remove(taskId);
      } catch (error) {
        // A full disk is logged once for all (StoreHealth); finishDeletes removes the row once the store takes writes.
        if (!(error instanceof StoreUnwritableError)) this.log.warn({ taskId, err: error }, "could not remove a deleted task's record");
      }
    }
  }

  close(): void {
    this.closed = true;
    this.systemd.off('unitChanged', this.onUnitChanged);
    this.systemd.off('reconnected', this.onReconnected);
    this.systemd.off('signalsMissed', this.onReconnected);
    for (const [unit, tracked] of this.units) {
      clearTimeout(tracked.retry);
      this.systemd.unwatch(unit);
    }
    this.units.clear();
  }

  /**
   * A unit's change comes as a burst of signals (its Unit and Service interfaces, several
   * properties each): they are taken in together, then the unit is read once.
   */
  private signalled({ unitName, interface: iface, changed }: UnitChange): void {
    const tracked = this.units.get(unitName);
    if (!tracked) return;
    rememberSignalled(tracked.signalled, iface, changed);
    const { unitSeen, serviceSeen } = tracked.signalled;
    tracked.signalsCurrent = unitSeen === true && serviceSeen === true && iface === UNIT_INTERFACE;
    tracked.midChange = iface === SERVICE_INTERFACE && unitSeen === true;
    if (tracked.starting) return;
    // The Unit interface's signal of the same change follows: the unit is taken in with it.
    if (tracked.midChange) return;
    if (tracked.refreshing) {
      tracked.again = true;
      return;
    }
    if (tracked.scheduled) return;
    tracked.scheduled = true;
    setImmediate(() => {
      tracked.scheduled = false;
      if (this.units.get(unitName) === tracked) void this.refresh(unitName);
    });
  }

  private async refreshOnce(unit: string, tracked: TrackedUnit): Promise<void> {
    const taskId = taskIdOf(unit);
    const found = taskId === null ? undefined : this.store.find(taskId);
    if (taskId === null || !found) {
      // Deleted from the store: nothing to record, and a unit we know nothing of is not ours to collect.
      this.untrack(unit);
      return;
    }
    if (isFinished(found.task)) {
      // Its result is recorded already: the unit has nothing more to tell.
      await this.collect(taskId, unit);
      return;
    }
    const { task } = found;
    const read = tracked.catchingUp || tracked.mustRead;
    // The change under way ends with its Unit signal, which asks for a refresh of its own.
    if (!read && tracked.midChange) return;
    tracked.mustRead = false;
    const fromSignals = !read && signalsTellWhole(tracked);
    const snapshot = fromSignals ? snapshotFromSignals(unit, tracked.signalled) : await this.systemd.getUnit(unit);
    tracked.failedReads = 0;
    // Collected meanwhile, or the tracker closed: what was read moves nothing any more.
    if (this.units.get(unit) !== tracked) return;
    const current = snapshot?.loadState === 'loaded' && belongsTo(snapshot, task) ? snapshot : null;
    const recovered = tracked.catchingUp;
    tracked.catchingUp = false;
    if (current === null) this.applyGone(task, tracked.signalled, recovered);
    else this.apply(task, current, recovered);
    const after = this.store.find(taskId);
    if (!after || !isFinished(after.task)) return;
    // The end is recorded and told: what waited for it (a stop's answer) is written out before
    // systemd is asked anything more, at the moment it is busiest (the unit's clean-up).
    await afterIo();
    // Let go meanwhile (a DELETE, close()): whoever did collects it; systemd is not asked for nothing.
    if (this.units.get(unit) !== tracked) return;
    try {
      if (fromSignals && current !== null) await this.recordSystemdCpu(after.task, () => this.units.get(unit) === tracked);
    } finally {
      // Unless a DELETE (or close()) let it go meanwhile: collected once.
      if (this.units.get(unit) === tracked) await this.collect(taskId, unit, current);
    }
  }

  /**
   * Collects the unit of a task recorded finished by a runner that did not live to collect it
   * (recovery), with systemd's CPU time first: that runner may have died before it read it.
   */
  async collectFinished(task: TaskRecord): Promise<void> {
    try {
      await this.recordSystemdCpu(task, () => true);
    } finally {
      await this.collect(task.taskId, task.unit);
    }
  }

  /**
   * systemd's CPU time of an ended unit (kept when it removed the cgroup), read after the end is
   * recorded and told, not before: right after a unit's end systemd answered a call in 7–9 ms
   * against 1.5–1.7 ms at other times (bench/stops.ts, docs/benchmarks.md), a wait every stop had.
   * Until then the record has the last sample's figure; then an update of its CPU time only, no
   * event (none carries usage). `stillOurs`: false once the unit was let go meanwhile (a DELETE,
   * close()). A figure the store refuses (a full disk) is lost: the last sample's stays.
   */
  private async recordSystemdCpu(task: TaskRecord, stillOurs: () => boolean): Promise<void> {
    let cpuNsec: number | null;
    try {
      cpuNsec = await this.systemd.cpuUsage(task.unit);
    } catch (error) {
      this.log.warn({ taskId: task.taskId, err: error }, "could not read systemd's CPU time of an ended task: the last sample's stays");
      return;
    }
    if (cpuNsec === null || !stillOurs()) return;
    const recorded = this.store.find(task.taskId)?.task.usage ?? null;
    if (recorded?.cpuNsec != null && recorded.cpuNsec >= cpuNsec) return;
    const usage = recorded ? { ...recorded, cpuNsec } : this.usage.final(task.unit, cpuNsec);
    try {
      this.store.update(task.taskId, { usage });
    } catch (error) {
      if (!(error instanceof StoreUnwritableError)) throw error;
      this.log.debug({ taskId: task.taskId, err: error }, "the store refused systemd's CPU time: the last sample's stays");
    }
  }

  private apply(task: TaskRecord, snapshot: UnitSnapshot, recovered: boolean): void {
    const mapped = mapUnitStatus(snapshot, task.stopRequested);
    const patch: TaskPatch = {};
    if (task.invocationId === null && snapshot.invocationId) patch.invocationId = snapshot.invocationId;
    if (task.startedAt === null && snapshot.activeEnterTimestamp > 0n) {
      patch.startedAt = isoFromMicros(snapshot.activeEnterTimestamp);
    }
    if (mapped.state === TaskState.exited) {
      const end = snapshot.execMainExitTimestamp || snapshot.inactiveEnterTimestamp;
      patch.usage = this.usage.final(task.unit, snapshot.cpuUsageNsec);
      this.transitions.move(task, { ...patch, ...finishedPatch(mapped), result: snapshot.result || null }, end, recovered);
    } else {
      this.transitions.move(task, { ...patch, state: mapped.state }, 0n, recovered);
    }
  }

  private isActive(unit: string): boolean {
    const taskId = taskIdOf(unit);
    const task = taskId === null ? undefined : this.store.find(taskId)?.task;
    return task !== undefined && !isFinished(task);
  }

  /** The unit is not loaded any more: trust what its last signals said, else the task is lost. */
  private applyGone(task: TaskRecord, signalled: Partial<UnitStatus>, recovered: boolean): void {
    const usage = this.usage.final(task.unit, null);
    const kept = usage === null ? {} : { usage };
    if (signalled.activeState !== undefined) {
      const mapped = mapUnitStatus(
        { activeState: '', subState: '', result: '', execMainCode: 0, execMainStatus: 0, ...signalled },
        task.stopRequested,
      );
      if (mapped.state === TaskState.exited) {
        this.transitions.move(task, { ...kept, ...finishedPatch(mapped), result: signalled.result || null }, 0n, recovered);
        return;
      }
    }
    if (task.stopRequested) {
      this.transitions.move(
        task,
        { ...kept, state: TaskState.exited, exitCode: ExitCode.canceled, detail: 'stopped on request' },
        0n,
        recovered,
      );
      return;
    }
    this.transitions.move(
      task,
      { ...kept, state: TaskState.lost, exitCode: ExitCode.undetermined, detail: 'the unit is gone and systemd kept no result' },
      0n,
      recovered,
    );
  }
}

/** Whether a unit's signals told its state whole: a change seen on both interfaces, Unit last. */
function signalsTellWhole(tracked: TrackedUnit): boolean {
  return tracked.signalsCurrent && tracked.signalled.activeState !== undefined && tracked.signalled.subState !== undefined;
}

/**
 * The unit's state from its signals (systemd sends every property the runner reads in them but the
 * CPU time, read after the end: recordSystemdCpu).
 */
function snapshotFromSignals(unit: string, known: SignalledUnit): UnitSnapshot {
  return {
    unitName: unit,
    loadState: 'loaded',
    activeState: known.activeState ?? '',
    subState: known.subState ?? '',
    result: known.result ?? '',
    execMainCode: known.execMainCode ?? 0,
    execMainStatus: known.execMainStatus ?? 0,
    invocationId: known.invocationId ?? '',
    activeEnterTimestamp: known.activeEnterTimestamp ?? 0n,
    inactiveEnterTimestamp: known.inactiveEnterTimestamp ?? 0n,
    execMainExitTimestamp: known.execMainExitTimestamp ?? 0n,
    cpuUsageNsec: null,
  };
}

function finishedPatch(mapped: Extract<MappedStatus, { state: 'exited' }>): TaskPatch {
  return { state: TaskState.exited, exitCode: mapped.exitCode, detail: mapped.detail };
}

/** What a unit's signals have said of the properties a snapshot holds, and which interfaces they came from. */
interface SignalledUnit extends Partial<UnitStatus> {
  invocationId?: string;
  activeEnterTimestamp?: bigint;
  inactiveEnterTimestamp?: bigint;
  execMainExitTimestamp?: bigint;
  unitSeen?: boolean;
  serviceSeen?: boolean;
}

function rememberSignalled(known: SignalledUnit, iface: string, changed: Record<string, unknown>): void {
  if (iface === UNIT_INTERFACE) known.unitSeen = true;
  if (iface === SERVICE_INTERFACE) known.serviceSeen = true;
  if (typeof changed['ActiveState'] === 'string') known.activeState = changed['ActiveState'];
  if (typeof changed['SubState'] === 'string') known.subState = changed['SubState'];
  if (typeof changed['Result'] === 'string') known.result = changed['Result'];
  if (typeof changed['ExecMainCode'] === 'number') known.execMainCode = changed['ExecMainCode'];
  if (typeof changed['ExecMainStatus'] === 'number') known.execMainStatus = changed['ExecMainStatus'];
  const invocation = changed['InvocationID'];
  if (invocation instanceof Uint8Array) known.invocationId = Buffer.from(invocation).toString('hex');
  if (typeof changed['ActiveEnterTimestamp'] === 'bigint') known.activeEnterTimestamp = changed['ActiveEnterTimestamp'];
  if (typeof changed['InactiveEnterTimestamp'] === 'bigint') known.inactiveEnterTimestamp = changed['InactiveEnterTimestamp'];
  if (typeof changed['ExecMainExitTimestamp'] === 'bigint') known.execMainExitTimestamp = changed['ExecMainExitTimestamp'];
}

/** A unit of the same name from another run (after a restart of systemd, say) is not this task's. */
function belongsTo(snapshot: UnitSnapshot, task: TaskRecord): boolean {
  return task.invocationId === null || snapshot.invocationId === '' || snapshot.invocationId === task.invocationId;
}
