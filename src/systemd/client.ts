/**
 * systemd's manager over the system bus: start a transient unit from a typed spec, stop, kill and
 * collect it, read its state, list ours, and report changes as they happen (never by polling).
 */
import { EventEmitter } from 'node:events';
import { messageOf } from '../errors.js';
import { BusCallError, DISCONNECTED, OUTCOME_UNKNOWN, SystemBus, type BusSignal, type IncomingMessages, type Variant } from './bus.js';
import { BUS_NAME, MANAGER, PROPERTIES, SYSTEMD_NAME, classifySignal, type ForgedMember, type SignalMeaning } from './signals.js';
import { readSystemdSignal, type SignalReadPolicy } from './signal-decoder.js';
import { trimIncoming, unbelievedLargeSignal } from './signal-trimmer.js';
import { ALL_UNITS_CHANGES_RULE, JOB_REMOVED_RULE, SYSTEMD_OWNER_RULE, unitChangesRule } from './match-rules.js';
import { unitObjectPath } from './unit-path.js';

import { checkUnitProperties, unitProperties, type CheckUnitSpec, type TaskUnitSpec, type UnitProperty } from './unit-spec.js';

export { DISCONNECTED, OUTCOME_UNKNOWN };
/** D-Bus error name of calls about a unit systemd does not have loaded. */
export const NO_SUCH_UNIT = 'org.freedesktop.systemd1.NoSuchUnit';

const SYSTEMD = SYSTEMD_NAME;
const MANAGER_PATH = '/org/freedesktop/systemd1';
/** systemd's interfaces of a service unit: a change signals the Service one first, then the Unit one. */
export const UNIT_INTERFACE = 'org.freedesktop.systemd1.Unit';
export const SERVICE_INTERFACE = 'org.freedesktop.systemd1.Service';
const UNIT = UNIT_INTERFACE;
const SERVICE = SERVICE_INTERFACE;

/** The properties of a task unit the runner reads. Timestamps are µs since the epoch, 0 when unset. */
export interface UnitSnapshot {
  unitName: string;
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  execMainCode: number;
  execMainStatus: number;
  invocationId: string;
  activeEnterTimestamp: bigint;
  inactiveEnterTimestamp: bigint;
  execMainExitTimestamp: bigint;
  /** CPU time used (ns); systemd keeps the last figure once the processes are gone. null: not counted. */
  cpuUsageNsec: number | null;
}

export interface UnitChange {
  unitName: string;
  /** The interface whose properties changed (UNIT_INTERFACE, SERVICE_INTERFACE, …). */
  interface: string;
  /** Only the properties that changed, by name. */
  changed: Record<string, unknown>;
}

export interface ListedUnit {
  name: string;
  loadState: string;
  activeState: string;
  subState: string;
}

export class SystemdError extends Error {
  constructor(
    message: string,
    readonly dbusName?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SystemdError';
  }
}

/** The next job of a unit to end, as one connection sees it (SystemdClient.watchJobRemoved). */
export interface JobWatch {
  /** The job's result, once its end is seen on this connection; never settles otherwise. */
  seen: Promise<string>;
  /** The job's result, or null after `timeoutMs` (counted from the first call), a lost bus or `cancel()`. */
  ended: (timeoutMs: number) => Promise<string | null>;
  cancel: () => void;
}

/**
 * What is done to a task's unit besides starting it. The runner's own calls, which polkit rules on
 * for an unprivileged runner, or the privileged starter's (src/starter/unit-control.ts).
 */
export interface UnitControl {
  stopUnit(unitName: string): Promise<void>;
  /** `signal` to every process of the unit. */
  killUnit(unitName: string, signal: number): Promise<void>;
  resetFailedUnit(unitName: string): Promise<void>;
}

interface JobWaiter {
  resolve: (result: string) => void;
  reject: (error: Error) => void;
}

/** A signal that did not come from whom it claims (see signals.ts): dropped. */
export interface ForgedSignal {
  /** The sender's unique name, as the bus set it. */
  sender: string;
  member: ForgedMember;
  /** The object path it named, cut to 200 characters (the sender chose it). */
  path: string;
}

export interface SystemdClientEvents {
  unitChanged: [UnitChange];
  forgedSignal: [ForgedSignal];
  /** The bus connection is gone; calls fail until `reconnected`. */
  disconnected: [Error];
  /** Connected and subscribed again (after a lost bus, or systemd re-executing): state may have moved. */
  reconnected: [];
  /** The bus refused a followed unit's match: its changes until now may have gone unseen (read them again). */
  signalsMissed: [];
}

/**
 * Followed units have a match rule each (dbus-daemon then sends none of systemd's signals about
 * other units: measured, a task's start and end made systemd signal 20 changes of the units it
 * depends on — targets, mounts, journald's sockets — and each woke the runner); beyond this many,
 * one rule for all units. dbus-daemon allows 512 rules a connection on the system bus by default:
 * half of it, leaving room for a bus configured tighter and for the connection's other rules.
 */
export const UNIT_MATCH_LIMIT = 256;
/** Under the rule for all units, each unit has its own rule again once this few are followed. */
export const UNIT_MATCH_NARROW_AT = UNIT_MATCH_LIMIT / 4;

const RECONNECT_DELAYS_MS = [200, 500, 1000, 2000, 5000];

export class SystemdClient extends EventEmitter<SystemdClientEvents> {
  private readonly jobWaiters = new Map<string, JobWaiter>();
  /** Who waits to see a unit's next JobRemoved on this connection (whoever started the job). */
  private readonly jobWatchers = new Map<string, Set<(result: string | null) => void>>();
  private readonly pathToUnit = new Map<string, string>();
  /**
   * Followed units' object paths with a match rule of their own on the current connection, asked
   * for (`adding`: a unit let go meanwhile has its rule removed once the bus has answered, so that
   * the removal cannot overtake the addition) or in place.
   */
  private readonly matchedPaths = new Map<string, 'adding' | 'added'>();
  /** The rule for all units on the current connection (more than UNIT_MATCH_LIMIT followed, or a unit's rule failed). */
  private allUnitsRule: 'none' | 'adding' | 'added' = 'none';
  /** A unit's rule failed while the rule for all units was being asked for: say so once it is in place. */
  private missedWhileAdding = false;
  /** Units' rules being added again before the rule for all units goes (see narrowMatches). */
  private narrowing = false;
  /** The current connection's bus refused a unit's rule: the rule for all units stays on it. */
  private unitRulesRefused = false;
  /** The connection whose rules attach() is adding: watch() and unwatch() act on it already. */
  private attaching: SystemBus | null = null;
  private bus: SystemBus | null = null;
  private closed = false;
  /** The unique name owning org.freedesktop.systemd1 on the current connection: the only sender of systemd's signals. */
  private systemdOwner: string | null = null;
  /** NameOwnerChanged signals for systemd's name seen on the current connection (see learnSystemdOwner). */
  private ownerChanges = 0;
  /** Times the connection was made again (for metrics). */
  reconnects = 0;
  /** A reconnect loop is under way. */
  private reconnecting = false;
  /** Task units' states read from systemd (for metrics): each read follows a signal, a reconnect, a start or recovery. */
  unitReads = 0;
  /** systemd's signals about units not followed, dropped before decoding (for metrics). */
  unitSignalsDropped = 0;

  /** `mayStart`: the only units this client starts (the runner's task units). */
  private constructor(
    private readonly mayStart: (unitName: string) => boolean,
    private readonly followUnits: boolean,
  ) {
    super();
  }

  /**
   * systemd's signals read on the wire (./signal-decoder.ts): a followed unit's changes and the ends
   * of jobs awaited here, the rest of systemd's about units and jobs dropped unread; a large signal
   * from anyone but systemd or the bus skipped unread, and counted as forged (the starter's
   * connection too: any local user may send it signals).
   */
  private get incoming(): IncomingMessages {
    const policy: SignalReadPolicy = {
      systemdOwner: () => this.systemdOwner,
      // Without units followed (the starter): no PropertiesChanged is matched, none read here.
      watches: (path) => this.followUnits && this.pathToUnit.has(path),
      keeps: SIGNALLED_PROPERTIES,
      awaitsJob: (unitName) => this.jobWaiters.has(unitName) || this.jobWatchers.has(unitName),
    };
    return {
      decide: (message) => {
        const signal = readSystemdSignal(message, policy);
        if (signal === null) {
          this.unitSignalsDropped += 1;
          return null;
        }
        if (signal.kind === 'forgedWithDescriptor') {
          const { sender, member, path } = signal;
          return { deliver: () => this.emit('forgedSignal', { sender, member, path }) };
        }
        if (signal.kind !== 'passOn') return { deliver: () => this.act(signal) };
        // A followed unit's signal with a value of a type not read on the wire: cut, for dbus-next.
        return this.followUnits ? trimIncoming(message, policy) : message;
      },
      keepLarge: (header) => {
        const unbelieved = unbelievedLargeSignal(header, policy);
        if (unbelieved === null) return true;
        try {
          this.emit('forgedSignal', unbelieved);
        } catch {
          // A listener's error (the log, the metric) does not make the framing keep the signal.
        }
        return false;
      },
    };
  }

  /**
   * Subscribes before anything is started, so no JobRemoved or state change can be missed.
   * `followUnits: false` (the privileged starter): start jobs only, no unit's property changes.
   */
  static async connect(mayStart: (unitName: string) => boolean, options: { followUnits?: boolean } = {}): Promise<SystemdClient> {
    const client = new SystemdClient(mayStart, options.followUnits ?? true);
    await client.attach(await SystemBus.connect(client.incoming));
    return client;
  }

  get connected(): boolean {
    return this.bus !== null;
  }

  private async attach(bus: SystemBus): Promise<void> {
    this.systemdOwner = null;
    this.ownerChanges = 0;
    bus.on('signal', (signal) => this.onSignal(signal));
    bus.once('disconnect', (error) => this.onDisconnect(bus, error));
    // systemd going away and coming back (daemon-reexec) drops our subscription with it; and its
    // owner is the only sender whose signals count. Matched before asking, so no change is missed.
    await bus.addMatch(SYSTEMD_OWNER_RULE);
    await this.learnSystemdOwner(bus);
    await bus.addMatch(JOB_REMOVED_RULE);
    // A new connection has none of the last one's rules: the units followed now get theirs, and
    // watch() and unwatch() act on this connection from here on. A rule the bus does not take fails
    // the attempt (the reconnect loop tries again), unless the rule for all units can stand for it.
    this.matchedPaths.clear();
    this.allUnitsRule = 'none';
    this.missedWhileAdding = false;
    this.unitRulesRefused = false;
    this.attaching = bus;
    try {
      if (this.followUnits) await this.attachRules(bus);
      this.bus = bus;
    } finally {
      this.attaching = null;
    }
    await this.manager('Subscribe');
  }

  /**
   * GetNameOwner, unless a NameOwnerChanged came meanwhile: the bus sends both in order, so that
   * signal is at least as new as the answer (which may be handled after it).
   */
  private async learnSystemdOwner(bus: SystemBus): Promise<void> {
    const changesBefore = this.ownerChanges;
    let owner: string | null;
    try {
      const [name] = await bus.call({
        destination: BUS_NAME,
        path: '/org/freedesktop/DBus',
        interface: BUS_NAME,
        member: 'GetNameOwner',
        signature: 's',
        body: [SYSTEMD],
      });
      owner = typeof name === 'string' && name !== '' ? name : null;
    } catch (error) {
      // Not on the bus (yet): its NameOwnerChanged will say when it is.
      if (!(error instanceof BusCallError && error.dbusName === 'org.freedesktop.DBus.Error.NameHasNoOwner')) throw error;
      owner = null;
    }
    if (this.ownerChanges === changesBefore) this.systemdOwner = owner;
  }

  private onDisconnect(bus: SystemBus, error: Error): void {
    // A connection lost before it was attached: its attempt fails, and whoever made it tries again.
    if (this.bus !== bus) return;
    this.bus = null;
    // Nobody's signals are systemd's until the next connection has asked (a restarted bus hands its unique names out again).
    this.systemdOwner = null;
    for (const [unit, waiter] of this.jobWaiters) {
      waiter.reject(new SystemdError(`lost the system bus while starting ${unit}`, DISCONNECTED));
    }
    this.jobWaiters.clear();
    // Who waits to see a job end here will not see it on this connection.
    for (const watchers of [...this.jobWatchers.values()]) for (const watcher of [...watchers]) watcher(null);
    this.jobWatchers.clear();
    if (this.closed) return;
    this.emit('disconnected', error);
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    // One loop at a time: a connection lost while it is being attached is this loop's to replace.
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; ; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]));
        if (this.closed) return;
        let bus: SystemBus | undefined;
        try {
          bus = await SystemBus.connect(this.incoming);
          await this.attach(bus);
          this.reconnects += 1;
          this.emit('reconnected');
          return;
        } catch {
          this.bus = null;
          // What that attempt learnt judges nothing on the next.
          this.systemdOwner = null;
          bus?.close();
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /**
   * Watches a unit's changes; call before starting it. Its match rule is on the socket before this
   * returns (unless a burst of calls holds every slot), so before the request to the privileged
   * starter; the bus does not order two connections' messages, so a start whose signals did not
   * tell the unit's state whole reads it back (UnitTracker.started).
   */
  watch(unitName: string): void {
    const path = unitObjectPath(unitName);
    if (this.pathToUnit.has(path)) return;
    this.pathToUnit.set(path, unitName);
    const bus = this.currentBus();
    // Covered by the rule for all units, or by its own rule still being asked for (its answer finds it followed).
    if (!this.followUnits || bus === null || this.allUnitsRule !== 'none' || this.matchedPaths.has(path)) return;
    if (this.matchedPaths.size >= UNIT_MATCH_LIMIT) void this.matchAllUnits(bus, false);
    else void this.matchUnit(bus, path);
  }

  /**
   * Stops watching a unit: its rule goes before anything written after this reaches the bus (a
   * StopUnit that collects it: the signals of its collection are not sent here).
   */
  unwatch(unitName: string): void {
    const path = unitObjectPath(unitName);
    if (!this.pathToUnit.delete(path)) return;
    const bus = this.currentBus();
    if (bus === null) return;
    if (this.matchedPaths.get(path) === 'added') {
      this.matchedPaths.delete(path);
      bus.removeMatchNow(unitChangesRule(path));
    }
    if (this.allUnitsRule === 'added' && this.pathToUnit.size <= UNIT_MATCH_NARROW_AT) void this.narrowMatches(bus);
  }

  /**
   * A unit's rule, written now when a call slot is free. Once the bus has answered, a unit let go
   * meanwhile has it removed. A rule the bus refused, or did not answer for (it may be in place:
   * removed), is stood for by the rule for all units; the unit's changes until then are read again.
   */
  private async matchUnit(bus: SystemBus, path: string): Promise<void> {
    this.matchedPaths.set(path, 'adding');
    try {
      await bus.addMatchNow(unitChangesRule(path));
    } catch (error) {
      if (this.currentBus() !== bus) return;
      this.matchedPaths.delete(path);
      if (isRefusal(error)) this.unitRulesRefused = true;
      else if (error instanceof BusCallError && error.dbusName !== DISCONNECTED) bus.removeMatchNow(unitChangesRule(path));
      if (this.pathToUnit.has(path)) await this.matchAllUnits(bus, true);
      return;
    }
    if (this.currentBus() !== bus) return;
    if (this.pathToUnit.has(path)) this.matchedPaths.set(path, 'added');
    else {
      this.matchedPaths.delete(path);
      bus.removeMatchNow(unitChangesRule(path));
    }
  }

  /**
   * The rule for all units; once in place, the units' own go (they count against the bus's limit).
   * `missed`: a unit's rule failed, so its changes until now are read again (signalsMissed). The bus
   * refusing or not answering this rule leaves units without one: the connection is given up, and
   * the next one adds every rule again (attach).
   */
  private async matchAllUnits(bus: SystemBus, missed: boolean): Promise<void> {
    this.missedWhileAdding ||= missed;
    if (this.allUnitsRule === 'added') this.sayMissed();
    if (this.allUnitsRule !== 'none') return;
    this.allUnitsRule = 'adding';
    try {
      await bus.addMatch(ALL_UNITS_CHANGES_RULE);
    } catch (error) {
      if (this.currentBus() === bus) bus.drop(`the bus did not take the rule for every unit's changes: ${messageOf(error)}`);
      return;
    }
    if (this.currentBus() !== bus) return;
    this.allUnitsRule = 'added';
    for (const [path, state] of [...this.matchedPaths]) {
      if (state !== 'added') continue;
      this.matchedPaths.delete(path);
      bus.removeMatchNow(unitChangesRule(path));
    }
    this.sayMissed();
    if (this.pathToUnit.size <= UNIT_MATCH_NARROW_AT) void this.narrowMatches(bus);
  }

  /** Once the rule for all units is in place: the changes a failed unit's rule may have missed are read again. */
  private sayMissed(): void {
    if (!this.missedWhileAdding) return;
    this.missedWhileAdding = false;
    this.emit('signalsMissed');
  }

  /**
   * Few units followed again: each its own rule, then the rule for all units goes (in that order:
   * nothing missed). A rule refused or unanswered keeps the rule for all units.
   */
  private async narrowMatches(bus: SystemBus): Promise<void> {
    if (this.narrowing || this.allUnitsRule !== 'added' || this.unitRulesRefused) return;
    this.narrowing = true;
    try {
      const missing = [...this.pathToUnit.keys()].filter((path) => !this.matchedPaths.has(path));
      for (const path of missing) this.matchedPaths.set(path, 'adding');
      const added = await Promise.allSettled(missing.map((path) => bus.addMatch(unitChangesRule(path))));
      if (this.currentBus() !== bus) return;
      missing.forEach((path, index) => {
        const answer = added[index];
        if (answer?.status === 'fulfilled' && this.pathToUnit.has(path)) this.matchedPaths.set(path, 'added');
        else {
          this.matchedPaths.delete(path);
          // Let go meanwhile, or unanswered (it may be in place): removed.
          if (answer?.status === 'fulfilled' || !isRefusal(answer?.reason)) bus.removeMatchNow(unitChangesRule(path));
          else this.unitRulesRefused = true;
        }
      });
      const covered = [...this.pathToUnit.keys()].every((path) => this.matchedPaths.get(path) === 'added');
      if (!covered || this.pathToUnit.size > UNIT_MATCH_LIMIT) return;
      bus.removeMatchNow(ALL_UNITS_CHANGES_RULE);
      this.allUnitsRule = 'none';
    } finally {
      this.narrowing = false;
    }
  }

  /** A new connection's rules: each followed unit's, or the rule for all units (beyond the limit, or when one is refused). */
  private async attachRules(bus: SystemBus): Promise<void> {
    const paths = [...this.pathToUnit.keys()];
    if (paths.length <= UNIT_MATCH_LIMIT) {
      for (const path of paths) this.matchedPaths.set(path, 'adding');
      const added = await Promise.allSettled(paths.map((path) => bus.addMatch(unitChangesRule(path))));
      const failure = added.find((answer): answer is PromiseRejectedResult => answer.status === 'rejected');
      paths.forEach((path, index) => {
        if (added[index]?.status === 'fulfilled') this.matchedPaths.set(path, 'added');
        else this.matchedPaths.delete(path);
      });
      if (failure === undefined) {
        // Let go while they were asked for.
        for (const path of paths.filter((one) => !this.pathToUnit.has(one) && this.matchedPaths.has(one))) {
          this.matchedPaths.delete(path);
          bus.removeMatchNow(unitChangesRule(path));
        }
        return;
      }
      if (!isRefusal(failure.reason)) throw failure.reason;
      this.unitRulesRefused = true;
    }
    await bus.addMatch(ALL_UNITS_CHANGES_RULE);
    this.allUnitsRule = 'added';
    // Those in place go; one still asked for (a unit watched meanwhile) is settled by its answer.
    for (const [path, state] of [...this.matchedPaths]) {
      if (state !== 'added') continue;
      this.matchedPaths.delete(path);
      bus.removeMatchNow(unitChangesRule(path));
    }
  }

  /** The connection the rules are on: the attached one, or the one being attached. */
  private currentBus(): SystemBus | null {
    return this.bus ?? this.attaching;
  }

  /** Starts the unit and resolves when systemd's start job has finished, with the job's result. */
  async startTransientUnit(spec: TaskUnitSpec): Promise<string> {
    return this.startWithProperties(spec.unitName, unitProperties(spec));
  }

  /** Starts a machine's check and resolves when it has ended (a oneshot unit), with the job's result. */
  async startCheckUnit(spec: CheckUnitSpec): Promise<string> {
    return this.startWithProperties(spec.unitName, checkUnitProperties(spec));
  }

  /** StartTransientUnit until its job is done; the result of the job ("done", "failed", …). */
  async startWithProperties(unitName: string, properties: UnitProperty[]): Promise<string> {
    if (!this.mayStart(unitName)) throw new SystemdError(`not a task unit: ${unitName}`);
    const done = this.waitForJob(unitName);
    done.catch(() => {});
    try {
      await this.manager('StartTransientUnit', 'ssa(sv)a(sa(sv))', [unitName, 'fail', properties, []]);
    } catch (error) {
      this.jobWaiters.delete(unitName);
      throw error;
    }
    return done;
  }

  /**
   * Watches for the next job of this unit to end, as this connection sees it (another connection,
   * the privileged starter, may have started it). Signals reach a connection in the order systemd
   * sent them, and systemd sends a unit's pending PropertiesChanged before its job's JobRemoved: once
   * `ended(timeoutMs)` resolves with a result, every change of the unit up to the job's end has been
   * reported (unitChanged). It resolves with null after `timeoutMs` (counted from its call), on a
   * lost bus (onDisconnect), or once `cancel()` is called; the watch ends with it. `seen` resolves
   * with the result only once the job's end is seen here, never otherwise.
   */
  watchJobRemoved(unitName: string): JobWatch {
    let settle: (result: string | null) => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const watchers = this.jobWatchers.get(unitName) ?? new Set();
    this.jobWatchers.set(unitName, watchers);
    const result = new Promise<string | null>((resolve) => (settle = resolve));
    const done = (value: string | null) => {
      clearTimeout(timer);
      watchers.delete(done);
      if (watchers.size === 0 && this.jobWatchers.get(unitName) === watchers) this.jobWatchers.delete(unitName);
      settle(value);
    };
    watchers.add(done);
    return {
      seen: result.then((value) => value ?? new Promise<string>(() => {})),
      ended: (timeoutMs) => {
        timer ??= setTimeout(() => done(null), timeoutMs).unref();
        return result;
      },
      cancel: () => done(null),
    };
  }

  /** SIGTERM, then SIGKILL to the whole cgroup once the unit's TimeoutStopSec has passed. */
  async stopUnit(unitName: string): Promise<void> {
    await this.manager('StopUnit', 'ss', [unitName, 'replace']);
  }

  /** StopUnit, resolved with the stop job's result once systemd has finished it (every process gone). */
  async stopUnitAndWait(unitName: string): Promise<string> {
    const done = this.waitForJob(unitName);
    done.catch(() => {});
    try {
      await this.stopUnit(unitName);
    } catch (error) {
      this.jobWaiters.delete(unitName);
      throw error;
    }
    return done;
  }

  async resetFailedUnit(unitName: string): Promise<void> {
    await this.manager('ResetFailedUnit', 's', [unitName]);
  }

  async killUnit(unitName: string, signal: number): Promise<void> {
    await this.manager('KillUnit', 'ssi', [unitName, 'all', signal]);
  }

  /**
   * Lets systemd garbage-collect a finished unit: an `active (exited)` one is stopped (it has no
   * process left), a `failed` one is reset. Resolves with false when the unit still has processes
   * (active and not exited, activating, deactivating): it is left alone. `control`: who stops or
   * resets it (this connection, or the privileged starter).
   */
  async collectUnit(unitName: string, known?: UnitSnapshot, control: UnitControl = this): Promise<boolean> {
    const snapshot = known ?? (await this.getUnit(unitName));
    if (snapshot === null) return true;
    try {
      if (snapshot.activeState === 'failed') await control.resetFailedUnit(unitName);
      else if (snapshot.activeState === 'active' && snapshot.subState === 'exited') await control.stopUnit(unitName);
      else return snapshot.activeState === 'inactive';
    } catch (error) {
      // Collected meanwhile (another collect, or systemd's own garbage collection).
      if (!(error instanceof SystemdError && error.dbusName === NO_SUCH_UNIT)) throw error;
    }
    return true;
  }

  /** The unit's state, or null when systemd no longer has it loaded. */
  async getUnit(unitName: string): Promise<UnitSnapshot | null> {
    this.unitReads += 1;
    let path: string;
    try {
      [path] = (await this.manager('GetUnit', 's', [unitName])) as [string];
    } catch (error) {
      if (error instanceof SystemdError && error.dbusName === NO_SUCH_UNIT) return null;
      throw error;
    }
    const [unit, service] = await Promise.all([this.getSome(path, UNIT, UNIT_PROPERTIES), this.getSome(path, SERVICE, SERVICE_PROPERTIES)]);
    return {
      unitName,
      loadState: textOf(unit['LoadState']),
      activeState: textOf(unit['ActiveState']),
      subState: textOf(unit['SubState']),
      result: textOf(service['Result']),
      execMainCode: Number(service['ExecMainCode'] ?? 0),
      execMainStatus: Number(service['ExecMainStatus'] ?? 0),
      invocationId: invocationIdOf(unit['InvocationID']),
      activeEnterTimestamp: microsOf(unit['ActiveEnterTimestamp']),
      inactiveEnterTimestamp: microsOf(unit['InactiveEnterTimestamp']),
      execMainExitTimestamp: microsOf(service['ExecMainExitTimestamp']),
      cpuUsageNsec: counterOf(service['CPUUsageNSec']),
    };
  }

  /**
   * The CPU time systemd counted for the unit (ns; it keeps the last figure once the processes are
   * gone), or null when it counted none or the unit is gone.
   */
  async cpuUsage(unitName: string): Promise<number | null> {
    try {
      return counterOf(await this.unitProperty(unitName, SERVICE, 'CPUUsageNSec'));
    } catch (error) {
      if (error instanceof SystemdError) return null;
      throw error;
    }
  }

  /**
   * The InvocationID of a unit a listing showed loaded. Empty when systemd gave none.
   */
  async getInvocationId(unitName: string): Promise<string> {
    this.unitReads += 1;
    return invocationIdOf(await this.unitProperty(unitName, UNIT, 'InvocationID'));
  }

  /** One property of a loaded unit: one Get on its object path (no GetUnit: the path follows from the name). */
  private async unitProperty(unitName: string, iface: string, name: string): Promise<unknown> {
    const [variant] = (await this.call(unitObjectPath(unitName), PROPERTIES, 'Get', 'ss', [iface, name])) as [Variant];
    return variant.value;
  }

  /** The unit's Environment= entries (NAME=value); empty when the unit is gone. */
  async getEnvironment(unitName: string): Promise<string[]> {
    const [path] = (await this.manager('GetUnit', 's', [unitName])) as [string];
    const { Environment: environment } = await this.getSome(path, SERVICE, ['Environment']);
    return Array.isArray(environment) ? environment.map(String) : [];
  }

  async listUnits(patterns: string[]): Promise<ListedUnit[]> {
    const [units] = (await this.manager('ListUnitsByPatterns', 'asas', [[], patterns])) as [unknown[][]];
    return units.map((row) => ({
      name: String(row[0]),
      loadState: String(row[2]),
      activeState: String(row[3]),
      subState: String(row[4]),
    }));
  }

  close(): void {
    this.closed = true;
    this.bus?.close();
    this.bus = null;
  }

  private waitForJob(unitName: string): Promise<string> {
    return new Promise((resolve, reject) => this.jobWaiters.set(unitName, { resolve, reject }));
  }

  /** Where signals dbus-next decoded enter: believed only from systemd's current owner, or the bus (signals.ts). */
  private onSignal(signal: BusSignal): void {
    const meaning = classifySignal(signal, this.systemdOwner);
    if (meaning.kind === 'propertiesChanged') {
      this.act({ ...meaning, changed: unwrap(meaning.changed as Record<string, Variant>) });
      return;
    }
    if (meaning.kind === 'forged') {
      this.emit('forgedSignal', { sender: signal.sender, member: meaning.member, path: signal.path.slice(0, 200) });
      return;
    }
    this.act(meaning);
  }

  /**
   * What the client does with a signal it believes, decoded by dbus-next or read on the wire
   * (./signal-decoder.ts, which reads only systemd's current owner's): property values unwrapped.
   */
  private act(meaning: Exclude<SignalMeaning, { kind: 'forged' }>): void {
    switch (meaning.kind) {
      case 'jobRemoved': {
        const watchers = this.jobWatchers.get(meaning.unitName);
        if (watchers) for (const watcher of [...watchers]) watcher(meaning.result);
        const waiter = this.jobWaiters.get(meaning.unitName);
        if (waiter) {
          this.jobWaiters.delete(meaning.unitName);
          waiter.resolve(meaning.result);
        }
        return;
      }
      case 'propertiesChanged': {
        const unitName = this.pathToUnit.get(meaning.path);
        if (unitName === undefined) return;
        this.emit('unitChanged', { unitName, interface: meaning.interface, changed: meaning.changed });
        return;
      }
      case 'systemdOwnerChanged':
        this.ownerChanges += 1;
        this.systemdOwner = meaning.owner;
        if (meaning.owner !== null) void this.resubscribe();
        return;
      case 'ignored':
        return;
      default:
        meaning satisfies never;
    }
  }

  /** systemd has a new bus name (it re-executed): subscribe again and let everyone re-read state. */
  private async resubscribe(): Promise<void> {
    try {
      await this.manager('Subscribe');
      this.reconnects += 1;
      this.emit('reconnected');
    } catch {
      // The bus itself is going away; the reconnect loop takes over.
    }
  }

  /**
   * Only the properties a snapshot needs, one Get each, sent together: GetAll of a service is ~300
   * properties (cgroup counters among them, which systemd reads from the kernel for each call), and
   * measured, Gets cost half the CPU in this process and in systemd (docs/benchmarks.md).
   */
  private async getSome(path: string, iface: string, names: readonly string[]): Promise<Record<string, unknown>> {
    const values = await Promise.all(
      names.map(async (name) => ((await this.call(path, PROPERTIES, 'Get', 'ss', [iface, name])) as [Variant])[0].value),
    );
    return Object.fromEntries(names.map((name, i) => [name, values[i]]));
  }

  private manager(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call(MANAGER_PATH, MANAGER, member, signature, body);
  }

  private async call(path: string, iface: string, member: string, signature: string, body: unknown[]) {
    const bus = this.bus;
    if (bus === null) throw new SystemdError(`${member}: not connected to the system bus`, DISCONNECTED);
    try {
      return await bus.call({ destination: SYSTEMD, path, interface: iface, member, signature, body });
    } catch (error) {
      if (error instanceof BusCallError) {
        throw new SystemdError(`${member}: ${error.message}`, error.dbusName, { cause: error });
      }
      throw new SystemdError(`${member}: ${messageOf(error)}`, undefined, { cause: error });
    }
  }
}

const UNIT_PROPERTIES = ['LoadState', 'ActiveState', 'SubState', 'InvocationID', 'ActiveEnterTimestamp', 'InactiveEnterTimestamp'] as const;
const SERVICE_PROPERTIES = ['Result', 'ExecMainCode', 'ExecMainStatus', 'ExecMainExitTimestamp', 'CPUUsageNSec'] as const;
/** A followed unit's signals carry these only: what a snapshot reads, which the signals stand in for. */
const SIGNALLED_PROPERTIES: ReadonlySet<string> = new Set([...UNIT_PROPERTIES, ...SERVICE_PROPERTIES]);
/** systemd's "not known" for a counter. */
const UINT64_MAX = 2n ** 64n - 1n;

function unwrap(properties: Record<string, Variant>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, variant] of Object.entries(properties)) values[name] = variant.value;
  return values;
}

function invocationIdOf(value: unknown): string {
  if (value instanceof Uint8Array || Array.isArray(value)) return Buffer.from(value as Uint8Array).toString('hex');
  return '';
}

/** D-Bus 's' properties arrive as strings and 't' ones as bigints; anything else (absent) is empty. */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function counterOf(value: unknown): number | null {
  return typeof value === 'bigint' && value !== UINT64_MAX ? Number(value) : null;
}

function microsOf(value: unknown): bigint {
  return typeof value === 'bigint' ? value : 0n;
}

/** The bus answered a match rule with an error (its limit of rules, say), as opposed to no answer or a lost bus. */
function isRefusal(error: unknown): boolean {
  return error instanceof BusCallError && !OUTCOME_UNKNOWN.has(error.dbusName ?? '');
}
