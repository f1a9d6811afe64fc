/**
 * Unit tracking without systemd: a fake SystemdClient that records watches, reads and collects and
 * answers with the snapshots a test gives it; the store and the transition function are the real ones.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { MachineSchema } from '../../src/config/schema.js';
import { MachineRegistry } from '../../src/machines/registry.js';
import {
  DISCONNECTED,
  NO_SUCH_UNIT,
  SERVICE_INTERFACE,
  SystemdError,
  UNIT_INTERFACE,
  type JobWatch,
  type SystemdClient,
  type UnitControl,
  type SystemdClientEvents,
  type UnitSnapshot,
} from '../../src/systemd/client.js';
import type { TaskUnitSpec } from '../../src/systemd/unit-spec.js';
import { TaskError } from '../../src/tasks/errors.js';
import { ExitCode, TaskState, type TaskRecord } from '../../src/tasks/model.js';
import { ParameterHandoff } from '../../src/starter/parameter-handoff.js';
import { TaskUnitStarter } from '../../src/starter/task-unit-starter.js';
import { finishDeletes } from '../../src/tasks/recovery.js';
import { TaskService } from '../../src/tasks/service.js';
import { TaskStore } from '../../src/tasks/store.js';
import { StoreUnwritableError } from '../../src/tasks/store-errors.js';
import { UsageSampler } from '../../src/tasks/usage-sampler.js';
import { UnitTracker } from '../../src/tasks/tracking.js';
import { TaskTransitions } from '../../src/tasks/transitions.js';
import { unitNameOf } from '../../src/tasks/unit-names.js';

import { settled, snapshot } from '../harness/unit-snapshot.js';

const log = pino({ level: 'silent' });

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** The part of SystemdClient the tracker uses, in memory. */
class FakeSystemd extends EventEmitter<SystemdClientEvents> {
  /** The units systemd has loaded; a unit not here is gone (GetUnit: NoSuchUnit). */
  readonly units = new Map<string, UnitSnapshot>();
  readonly watched = new Set<string>();
  readonly reads: string[] = [];
  readonly collected: { unit: string; known: UnitSnapshot | undefined }[] = [];
  readonly stops: string[] = [];
  readonly kills: string[] = [];
  /** What StopUnit does besides being recorded: nothing by default, or a throw. */
  onStop: (unit: string) => void = () => {};
  /** While set, every read waits for it: the test decides when a read ends. */
  hold: Gate | null = null;
  collectFails = false;
  /** What StartTransientUnit does: the result of the start job, or a throw. */
  onStart: (spec: TaskUnitSpec) => string | Promise<string> = () => 'done';
  /** The start job's end as this connection sees it: by default not before the starter's answer. */
  jobSeenHere = new Promise<string>(() => {});

  watch(unit: string): void {
    this.watched.add(unit);
  }

  unwatch(unit: string): void {
    this.watched.delete(unit);
  }

  /** Reads that fail (no reply) before they answer again. */
  failingReads = 0;

  async getUnit(unit: string): Promise<UnitSnapshot | null> {
    this.reads.push(unit);
    if (this.hold) await this.hold.promise;
    if (this.failingReads > 0) {
      this.failingReads -= 1;
      throw new SystemdError('Get: no reply', 'org.freedesktop.DBus.Error.NoReply');
    }
    return this.units.get(unit) ?? null;
  }

  async startTransientUnit(spec: TaskUnitSpec): Promise<string> {
    return this.onStart(spec);
  }

  /** As systemd: a unit that still runs is left alone (false); a finished one is let go, by `control` when it is another's. */
  async collectUnit(unit: string, known?: UnitSnapshot, control?: UnitControl): Promise<boolean> {
    this.collected.push({ unit, known });
    if (this.collectFails) throw new Error('ResetFailedUnit: the bus is gone');
    const loaded = this.units.get(unit);
    if (loaded?.activeState === 'active' && loaded.subState === 'running') return false;
    if (control && control !== (this as unknown)) {
      if (loaded?.activeState === 'failed') await control.resetFailedUnit(unit);
      else await control.stopUnit(unit);
    }
    this.units.delete(unit);
    return true;
  }

  async stopUnit(unit: string): Promise<void> {
    this.stops.push(unit);
    this.onStop(unit);
  }

  async killUnit(unit: string): Promise<void> {
    this.kills.push(unit);
  }

  /** This connection sees each start job end with it (its signals are the test's to send). */
  watchJobRemoved(): JobWatch {
    return { seen: this.jobSeenHere, ended: async () => 'done', cancel: () => {} };
  }

  readonly cpuReads: string[] = [];
  /** While set, a CPU time read waits for it. */
  holdCpu: Gate | null = null;
  async cpuUsage(unit: string): Promise<number | null> {
    this.cpuReads.push(unit);
    if (this.holdCpu) await this.holdCpu.promise;
    return this.units.get(unit)?.cpuUsageNsec ?? null;
  }

  /**
   * A PropertiesChanged, as the client reports it. Without `iface`, of no interface the tracker
   * knows: it reads the unit back; with the Service's then the Unit's, the signals tell the state.
   */
  signal(unit: string, changed: Record<string, unknown> = { ActiveState: 'active', SubState: 'running' }, iface = ''): void {
    this.emit('unitChanged', { unitName: unit, interface: iface, changed });
  }
}

/** A unit whose main process exited with `status`, as systemd reads it (failed) and signals it. */
function failedWith(status: number): { read: Partial<UnitSnapshot>; signalled: Record<string, unknown> } {
  return {
    read: { activeState: 'failed', subState: 'failed', result: 'exit-code', execMainCode: 1, execMainStatus: status },
    signalled: {
      ActiveState: 'failed',
      SubState: 'failed',
      Result: 'exit-code',
      ExecMainCode: 1,
      ExecMainStatus: status,
    },
  };
}

let directory: string;
let stores = 0;
let store: TaskStore;
let usage: UsageSampler;
let systemd: FakeSystemd;
let transitions: TaskTransitions;
let tracker: UnitTracker;
let ids = 0;

/** A task in the store, as the lifecycle records it before starting its unit. */
function insertTask(): { taskId: string; unit: string } {
  const taskId = (0xa0000000 + ++ids).toString(16);
  const unit = unitNameOf(taskId);
  store.insert({ taskId, machine: 'echo', unit, createdAt: '2026-11-28T10:00:00.000Z' });
  return { taskId, unit };
}

function taskOf(taskId: string): TaskRecord {
  const found = store.find(taskId);
  assert.ok(found, `task ${taskId} is not in the store`);
  return found.task;
}

function finish(taskId: string): void {
  transitions.move(taskOf(taskId), { state: TaskState.exited, exitCode: 0, detail: 'exited with status 0' });
}

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-tracking-test-'));
});

after(() => {
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  store = new TaskStore(join(directory, `store-${++stores}`));
  systemd = new FakeSystemd();
  transitions = new TaskTransitions(store, log);
  usage = new UsageSampler('tessia-tasks.slice', 60_000);
  tracker = new UnitTracker(store, systemd as unknown as SystemdClient, transitions, usage, log);
});

afterEach(async () => {
  systemd.hold?.open();
  await settled();
  tracker.close();
  usage.close();
  transitions.close();
  store.close();
});

describe('UnitTracker refresh', () => {
  it('moves a task to the state its unit is in.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    tracker.track(unit);
    await tracker.refresh(unit);
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.running);
    assert.equal(task.invocationId, 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5');
    assert.deepEqual(systemd.reads, [unit]);
  });

  it('reads a unit once for a burst of signals.', async () => {
    const { unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    tracker.track(unit);
    systemd.signal(unit, { ActiveState: 'active' });
    systemd.signal(unit, { SubState: 'running' });
    systemd.signal(unit, { Result: 'success' });
    await settled();
    assert.deepEqual(systemd.reads, [unit]);
  });

  it('reads a unit exactly once more when signals come during a read, however many they are.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    tracker.track(unit);
    systemd.hold = gate();
    const first = tracker.refresh(unit);
    await settled();
    assert.equal(systemd.reads.length, 1);
    systemd.signal(unit, { ActiveState: 'active' });
    systemd.signal(unit, { SubState: 'running' });
    // A refresh asked for during the read joins it rather than starting a second one at once.
    const joined = tracker.refresh(unit);
    systemd.signal(unit, { Result: 'success' });
    await settled();
    assert.equal(systemd.reads.length, 1, 'a second read started while the first was under way');
    const held = systemd.hold;
    systemd.hold = null;
    held.open();
    await Promise.all([first, joined]);
    assert.equal(systemd.reads.length, 2);
    await settled();
    assert.equal(systemd.reads.length, 2);
    assert.equal(taskOf(taskId).state, TaskState.running);
  });

  it('reads a unit again for a refresh asked for at any point of the end of a read.', async () => {
    // Whenever the call comes as the read ends, it is either joined to a read still to come or starts one.
    for (let ticks = 0; ticks < 12; ticks++) {
      const { unit } = insertTask();
      systemd.units.set(unit, snapshot(unit));
      tracker.track(unit);
      const held = gate();
      systemd.hold = held;
      const reads = systemd.reads.length;
      const first = tracker.refresh(unit);
      systemd.hold = null;
      const late = (async () => {
        await held.promise;
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        await tracker.refresh(unit);
      })();
      held.open();
      await Promise.all([first, late]);
      await settled();
      assert.equal(systemd.reads.length - reads, 2, `a refresh ${ticks} microtasks after the read ended was lost`);
    }
  });

  it('reads every active task again when the bus is back, but not one under its start job.', async () => {
    const running = insertTask();
    const starting = insertTask();
    systemd.units.set(running.unit, snapshot(running.unit));
    systemd.units.set(starting.unit, snapshot(starting.unit));
    tracker.track(running.unit);
    tracker.track(starting.unit, true);
    systemd.emit('reconnected');
    await settled();
    assert.deepEqual(systemd.reads, [running.unit]);
  });

  it('records a task whose unit is gone without a result as lost, and stops following it.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    await tracker.refresh(unit);
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.lost);
    assert.equal(task.exitCode, ExitCode.undetermined);
    assert.equal(systemd.watched.size, 0);
  });
});

describe('UnitTracker stops following a unit whose task is finished or unknown', () => {
  it('untracks and collects the unit of a task that finished, when its unit changes.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    finish(taskId);
    systemd.signal(unit);
    await settled();
    assert.deepEqual(systemd.reads, [], 'read the unit of a finished task');
    assert.equal(systemd.watched.has(unit), false, 'still watches the unit of a finished task');
    assert.deepEqual(
      systemd.collected.map((each) => each.unit),
      [unit],
    );
    systemd.signal(unit);
    await settled();
    assert.deepEqual(systemd.reads, []);
  });

  it('does not follow again the unit of a finished task that a refresh names.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit, { subState: 'exited', execMainCode: 1 }));
    tracker.track(unit);
    await tracker.refresh(unit);
    assert.equal(taskOf(taskId).state, TaskState.exited);
    assert.equal(systemd.watched.size, 0);
    assert.equal(systemd.collected.length, 1);
    // As a stop does when the unit is gone by the time StopUnit reaches systemd.
    await tracker.refresh(unit);
    await tracker.reattach(taskOf(taskId));
    assert.equal(systemd.watched.size, 0, 'follows a finished task again');
    assert.equal(systemd.reads.length, 1);
    assert.equal(systemd.collected.length, 1);
  });

  it('untracks the unit of a task the store no longer has, without collecting it.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    store.remove(taskId);
    systemd.signal(unit);
    await settled();
    assert.equal(systemd.watched.has(unit), false, 'still watches the unit of an unknown task');
    assert.deepEqual(systemd.reads, []);
    assert.deepEqual(systemd.collected, []);
    await tracker.refresh(unit);
    assert.equal(systemd.watched.size, 0);
  });

  it('stops reading once the unit is collected, even if signals came during the read.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit, failedWith(2).read));
    tracker.track(unit);
    systemd.hold = gate();
    const read = tracker.refresh(unit);
    await settled();
    systemd.signal(unit, { ActiveState: 'failed' });
    const held = systemd.hold;
    systemd.hold = null;
    held.open();
    await read;
    await settled();
    assert.equal(taskOf(taskId).exitCode, 2);
    assert.equal(systemd.reads.length, 1);
    assert.equal(systemd.watched.size, 0);
  });
});

/** One change of a unit as systemd signals it: its Service interface, then its Unit interface. */
function change(unit: string, service: Record<string, unknown>, unitProperties: Record<string, unknown>): void {
  systemd.signal(unit, service, SERVICE_INTERFACE);
  systemd.signal(unit, unitProperties, UNIT_INTERFACE);
}

const INVOCATION = Buffer.from('dc1e62fa71a147d4be116aa8adb1dcf4', 'hex');
const RUNNING_SERVICE = { Result: 'success', ExecMainCode: 0, ExecMainStatus: 0, ExecMainExitTimestamp: 0n };
const RUNNING_UNIT = {
  ActiveState: 'active',
  SubState: 'running',
  InvocationID: INVOCATION,
  ActiveEnterTimestamp: 1_795_940_577_156_583n,
  InactiveEnterTimestamp: 0n,
};

/** A task whose unit's start its signals told whole (the start job's end seen): running, nothing read. */
async function startedBySignals(): Promise<{ taskId: string; unit: string }> {
  const inserted = insertTask();
  tracker.track(inserted.unit, true);
  change(inserted.unit, RUNNING_SERVICE, RUNNING_UNIT);
  tracker.started(inserted.unit, true);
  await tracker.refresh(inserted.unit);
  return inserted;
}

describe('UnitTracker from the signals alone', () => {
  it("takes a started unit's state, invocation and start time from its signals, reading nothing back.", async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit, true);
    change(unit, RUNNING_SERVICE, { ...RUNNING_UNIT, ActiveState: 'activating', SubState: 'start', ActiveEnterTimestamp: 0n });
    change(unit, RUNNING_SERVICE, RUNNING_UNIT);
    tracker.started(unit, true);
    await tracker.refresh(unit);
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.running);
    assert.equal(task.invocationId, INVOCATION.toString('hex'));
    assert.equal(task.startedAt, '2026-11-29T08:22:57.156583Z');
    assert.deepEqual(systemd.reads, []);
  });

  it("records an end from its signals with the exit status, the end time and systemd's CPU time: one property read.", async () => {
    const { taskId, unit } = await startedBySignals();
    systemd.units.set(unit, snapshot(unit, { cpuUsageNsec: 4_200_000 }));
    change(
      unit,
      { Result: 'exit-code', ExecMainCode: 1, ExecMainStatus: 3, ExecMainExitTimestamp: 1_795_940_577_460_011n },
      { ...RUNNING_UNIT, ActiveState: 'failed', SubState: 'failed', InactiveEnterTimestamp: 1_795_940_577_460_228n },
    );
    await settled();
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.exited);
    assert.equal(task.exitCode, 3);
    assert.equal(task.finishedAt, '2026-11-29T08:22:57.460011Z');
    assert.equal(task.usage?.cpuNsec, 4_200_000);
    assert.deepEqual(systemd.reads, []);
    assert.deepEqual(systemd.cpuReads, [unit]);
    assert.equal(systemd.collected.length, 1);
    assert.equal(systemd.collected[0]?.known?.activeState, 'failed');
  });

  it("records and tells an end before systemd answers for its CPU time, then keeps systemd's figure; the unit is collected after it.", async () => {
    const { taskId, unit } = await startedBySignals();
    systemd.units.set(unit, snapshot(unit, { cpuUsageNsec: 4_200_000 }));
    const cpuAnswer = gate();
    systemd.holdCpu = cpuAnswer;
    const finished = transitions.whenFinished(taskId, AbortSignal.timeout(5000));
    change(
      unit,
      { Result: 'exit-code', ExecMainCode: 1, ExecMainStatus: 3, ExecMainExitTimestamp: 1_795_940_577_460_011n },
      { ...RUNNING_UNIT, ActiveState: 'failed', SubState: 'failed', InactiveEnterTimestamp: 1_795_940_577_460_228n },
    );
    assert.equal((await finished)?.exitCode, 3, 'told before the CPU read');
    await settled();
    assert.deepEqual(systemd.cpuReads, [unit], 'asked once told');
    assert.notEqual(taskOf(taskId).usage?.cpuNsec, 4_200_000);
    assert.deepEqual(systemd.collected, [], 'the unit stays until its CPU time is read');
    const eventsBefore = store.eventsAfter(0, 100).length;
    cpuAnswer.open();
    await settled();
    assert.equal(taskOf(taskId).usage?.cpuNsec, 4_200_000);
    assert.equal(store.eventsAfter(0, 100).length, eventsBefore, 'no event for the figure');
    assert.equal(systemd.collected.length, 1);
  });

  it("asks systemd for the CPU time only once what waited for the end has written its answer (a socket's write at the next tick).", async () => {
    const { taskId, unit } = await startedBySignals();
    systemd.units.set(unit, snapshot(unit, { cpuUsageNsec: 4_200_000 }));
    const order: string[] = [];
    const cpuUsage = systemd.cpuUsage.bind(systemd);
    systemd.cpuUsage = (asked: string) => {
      order.push('CPU time asked');
      return cpuUsage(asked);
    };
    // As a stop's route does: answer once the task has finished; express's write leaves at the next tick.
    void transitions.whenFinished(taskId, AbortSignal.timeout(5000)).then(() => process.nextTick(() => order.push('answer written')));
    change(
      unit,
      { Result: 'success', ExecMainCode: 1, ExecMainStatus: 0, ExecMainExitTimestamp: 1_795_940_577_460_011n },
      { ...RUNNING_UNIT, ActiveState: 'active', SubState: 'exited' },
    );
    await settled();
    assert.deepEqual(order, ['answer written', 'CPU time asked']);
    assert.equal(taskOf(taskId).usage?.cpuNsec, 4_200_000);
    assert.equal(systemd.collected.length, 1);
  });

  it('asks systemd nothing more for a unit let go in the turn after its end (a DELETE collects it itself).', async () => {
    const { taskId, unit } = await startedBySignals();
    systemd.units.set(unit, snapshot(unit, { activeState: 'active', subState: 'exited', cpuUsageNsec: 4_200_000 }));
    // What waited for the end lets the unit go before the next turn, as a DELETE's collect() does.
    void transitions.whenFinished(taskId, AbortSignal.timeout(5000)).then(() => tracker.collect(taskId, unit));
    change(
      unit,
      { Result: 'success', ExecMainCode: 1, ExecMainStatus: 0, ExecMainExitTimestamp: 1_795_940_577_460_011n },
      { ...RUNNING_UNIT, ActiveState: 'active', SubState: 'exited' },
    );
    await settled();
    assert.equal(taskOf(taskId).state, TaskState.exited);
    assert.deepEqual(systemd.cpuReads, []);
    assert.deepEqual(
      systemd.collected.map(({ unit: collected }) => collected),
      [unit],
      'collected once, by what let it go',
    );
  });

  it("collects an ended unit even when reading systemd's CPU time fails, and writes no figure for a task deleted meanwhile.", async () => {
    const ended = (unit: string) =>
      change(
        unit,
        { Result: 'success', ExecMainCode: 1, ExecMainStatus: 0, ExecMainExitTimestamp: 1_795_940_577_460_011n },
        { ...RUNNING_UNIT, ActiveState: 'active', SubState: 'exited' },
      );
    const failing = await startedBySignals();
    const cpuUsage = systemd.cpuUsage.bind(systemd);
    systemd.cpuUsage = async () => {
      throw new TypeError('a bug of ours');
    };
    ended(failing.unit);
    await settled();
    assert.equal(taskOf(failing.taskId).state, TaskState.exited);
    assert.deepEqual(
      systemd.collected.map(({ unit }) => unit),
      [failing.unit],
    );
    systemd.cpuUsage = cpuUsage;

    const deleted = await startedBySignals();
    systemd.units.set(deleted.unit, snapshot(deleted.unit, { activeState: 'active', subState: 'exited', cpuUsageNsec: 4_200_000 }));
    const cpuAnswer = gate();
    systemd.holdCpu = cpuAnswer;
    ended(deleted.unit);
    await settled();
    assert.ok(systemd.cpuReads.includes(deleted.unit), 'the CPU time is being read');
    const before = taskOf(deleted.taskId).usage;
    await tracker.collect(deleted.taskId, deleted.unit);
    cpuAnswer.open();
    await settled();
    assert.deepEqual(store.find(deleted.taskId)?.task.usage ?? null, before ?? null, 'no figure written once the unit was let go');
    assert.equal(systemd.collected.filter(({ unit }) => unit === deleted.unit).length, 1, 'collected once');
  });

  it("waits for the Unit interface's signal of a change before taking it in.", async () => {
    const { taskId, unit } = await startedBySignals();
    systemd.signal(unit, { Result: 'exit-code', ExecMainCode: 1, ExecMainStatus: 3 }, SERVICE_INTERFACE);
    await settled();
    assert.equal(taskOf(taskId).state, TaskState.running);
    // A refresh asked for between the two (another change's, a caller's) waits for the Unit signal too.
    await tracker.refresh(unit);
    assert.equal(taskOf(taskId).state, TaskState.running);
    systemd.signal(unit, { ActiveState: 'failed', SubState: 'failed' }, UNIT_INTERFACE);
    await settled();
    assert.equal(taskOf(taskId).exitCode, 3);
    assert.deepEqual(systemd.reads, []);
  });

  it('reads the unit back when its signals do not tell it whole: one interface only, or a start whose end this connection missed.', async () => {
    const first = insertTask();
    systemd.units.set(first.unit, snapshot(first.unit));
    tracker.track(first.unit, true);
    systemd.signal(first.unit, RUNNING_UNIT, UNIT_INTERFACE);
    tracker.started(first.unit, true);
    await tracker.refresh(first.unit);
    assert.deepEqual(systemd.reads, [first.unit]);
    const second = insertTask();
    systemd.units.set(second.unit, snapshot(second.unit));
    tracker.track(second.unit, true);
    change(second.unit, RUNNING_SERVICE, { ...RUNNING_UNIT, ActiveState: 'activating', SubState: 'start' });
    tracker.started(second.unit, true);
    await tracker.refresh(second.unit);
    assert.deepEqual(systemd.reads, [first.unit, second.unit], 'signals that still say activating once the start job is done');
    assert.equal(taskOf(second.taskId).state, TaskState.running);
    const third = insertTask();
    systemd.units.set(third.unit, snapshot(third.unit));
    tracker.track(third.unit, true);
    change(third.unit, RUNNING_SERVICE, RUNNING_UNIT);
    tracker.started(third.unit, false);
    await tracker.refresh(third.unit);
    assert.deepEqual(systemd.reads, [first.unit, second.unit, third.unit], 'a start whose end this connection did not see');
  });

  it('reads the unit back when it catches up (after a restart or a lost bus), whatever it was signalled.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit, failedWith(4).read));
    tracker.track(unit, true);
    change(unit, RUNNING_SERVICE, RUNNING_UNIT);
    tracker.started(unit, true);
    await tracker.reattach(taskOf(taskId));
    assert.deepEqual(systemd.reads, [unit]);
    assert.equal(taskOf(taskId).exitCode, 4);
  });
});

describe('UnitTracker after changes went unsignalled', () => {
  it('trusts no signal from before a lost bus: a refresh reads the unit until a change is signalled again whole.', async () => {
    const { taskId, unit } = insertTask();
    const invocationId = INVOCATION.toString('hex');
    systemd.units.set(unit, snapshot(unit, { invocationId }));
    tracker.track(unit, true);
    change(unit, RUNNING_SERVICE, RUNNING_UNIT);
    tracker.started(unit, true);
    await tracker.refresh(unit);
    assert.deepEqual(systemd.reads, []);
    // The bus is back: the catch-up read finds it running; then it ends with no signal this side saw.
    await tracker.reattach(taskOf(taskId));
    assert.deepEqual(systemd.reads, [unit]);
    systemd.units.set(unit, snapshot(unit, { ...failedWith(6).read, invocationId }));
    await tracker.refresh(unit);
    assert.deepEqual(systemd.reads, [unit, unit], 'the signals from before the loss were taken as the state');
    assert.equal(taskOf(taskId).exitCode, 6);
  });
});

describe('UnitTracker after a failed read', () => {
  it('reads the unit again a second later: an ended unit sends no more signals to move its task.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit, failedWith(3).read));
    tracker.track(unit);
    systemd.failingReads = 1;
    await tracker.refresh(unit);
    assert.equal(taskOf(taskId).state, TaskState.created);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await settled();
    assert.equal(taskOf(taskId).exitCode, 3);
    assert.deepEqual(systemd.reads, [unit, unit]);
  });
});

describe('UnitTracker and the start job', () => {
  it('leaves a unit under its start job to the lifecycle: no read for its signals or a refresh.', async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    tracker.track(unit, true);
    systemd.signal(unit);
    await tracker.refresh(unit);
    await settled();
    assert.deepEqual(systemd.reads, []);
    assert.equal(taskOf(taskId).state, TaskState.created);
    assert.equal(systemd.watched.has(unit), true);
    tracker.started(unit);
    await tracker.refresh(unit);
    assert.deepEqual(systemd.reads, [unit]);
    assert.equal(taskOf(taskId).state, TaskState.running);
    systemd.signal(unit);
    await settled();
    assert.equal(systemd.reads.length, 2);
  });

  it('settles a unit gone before its first read by the signals it sent during its start job.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit, true);
    systemd.signal(unit, failedWith(3).signalled);
    tracker.started(unit);
    await tracker.refresh(unit);
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.exited);
    assert.equal(task.exitCode, 3);
    assert.equal(task.result, 'exit-code');
    assert.equal(systemd.watched.size, 0);
  });
});

describe('UnitTracker collect', () => {
  it('lets systemd collect the unit with what was read of it, and stops following it.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    finish(taskId);
    const known = snapshot(unit, { activeState: 'active', subState: 'exited' });
    await tracker.collect(taskId, unit, known);
    assert.equal(systemd.collected.length, 1);
    assert.equal(systemd.collected[0]?.unit, unit);
    assert.equal(systemd.collected[0].known, known);
    assert.equal(systemd.watched.size, 0);
    assert.equal(taskOf(taskId).state, TaskState.exited, 'a task that was not deleted stays in the history');
  });

  it('drops the row of a deleted task once its unit is collected.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    store.forget(taskId);
    finish(taskId);
    await tracker.collect(taskId, unit);
    assert.equal(store.find(taskId), undefined);
  });

  it('stops following the unit even when systemd cannot collect it.', async () => {
    const { taskId, unit } = insertTask();
    tracker.track(unit);
    finish(taskId);
    systemd.collectFails = true;
    await tracker.collect(taskId, unit);
    assert.equal(systemd.collected.length, 1);
    assert.equal(systemd.watched.size, 0);
  });

  it('keeps the row of a deleted task while its unit could not be collected or still runs.', async () => {
    const failing = insertTask();
    store.forget(failing.taskId);
    finish(failing.taskId);
    systemd.units.set(failing.unit, snapshot(failing.unit, failedWith(1).read));
    systemd.collectFails = true;
    await tracker.collect(failing.taskId, failing.unit);
    assert.equal(store.find(failing.taskId)?.forgotten, true, 'collecting failed: the row must stay');
    systemd.collectFails = false;

    const running = insertTask();
    store.forget(running.taskId);
    finish(running.taskId);
    systemd.units.set(running.unit, snapshot(running.unit));
    await tracker.collect(running.taskId, running.unit);
    assert.equal(store.find(running.taskId)?.forgotten, true, 'the unit still runs: the row must stay');
  });
});

describe('UnitTracker close', () => {
  it('removes its listeners from the client and reads nothing after.', async () => {
    const { unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    assert.equal(systemd.listenerCount('unitChanged'), 1);
    assert.equal(systemd.listenerCount('reconnected'), 1);
    tracker.track(unit);
    tracker.close();
    assert.equal(systemd.listenerCount('unitChanged'), 0);
    assert.equal(systemd.listenerCount('reconnected'), 0);
    assert.equal(systemd.watched.size, 0, 'still watches units after close');
    systemd.signal(unit);
    systemd.emit('reconnected');
    await tracker.refresh(unit);
    await settled();
    assert.deepEqual(systemd.reads, []);
    assert.equal(systemd.watched.size, 0);
  });
});

async function service(): Promise<TaskService> {
  const handoff = new ParameterHandoff(join(directory, `parameters-${stores}`));
  await handoff.open();
  const machines = new MachineRegistry({ echo: MachineSchema.parse({ builtin: 'echo' }) });
  const starter = new TaskUnitStarter(systemd as unknown as SystemdClient, handoff, {
    machines,
    slice: 'tessia.slice',
    maxParameterBytes: 10_000,
  });
  const options = { stopWaitMs: 0, maxActiveTasks: 10, maxActiveChecks: 4, maxParameterBytes: 10_000, starter };
  return new TaskService(store, systemd as unknown as SystemdClient, tracker, transitions, machines, options, log);
}

const withCode = (code: string) => (error: unknown) => error instanceof TaskError && error.code === code;

describe('UnitTracker and the lifecycle', () => {
  it('settles a failed start itself (-3), not by what the unit signalled, and collects the unit.', async () => {
    const tasks = await service();
    systemd.onStart = ({ unitName }) => {
      // 203: systemd could not exec the program, which the lifecycle reports as a failed start.
      systemd.units.set(unitName, snapshot(unitName, failedWith(203).read));
      systemd.signal(unitName, failedWith(203).signalled);
      return 'failed';
    };
    await assert.rejects(tasks.create({ machine: 'echo', parameters: ['echo hi'] }), withCode('START_FAILED'));
    await settled();
    const [task, ...others] = store.list();
    assert.equal(others.length, 0);
    assert.equal(task?.state, TaskState.exited);
    assert.equal(task.exitCode, ExitCode.exception);
    assert.equal(systemd.collected.length, 1);
    assert.equal(systemd.watched.size, 0);
  });

  it("goes on once this runner's connection has seen the start job end, before the starter's answer.", async () => {
    const tasks = await service();
    const starterAnswers = gate();
    systemd.onStart = async ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName));
      await starterAnswers.promise;
      return 'done';
    };
    systemd.jobSeenHere = Promise.resolve('done');
    const created = await Promise.race([tasks.create({ machine: 'echo', parameters: ['echo hi'] }), sleep(2000, 'waited for the starter')]);
    assert.notEqual(created, 'waited for the starter');
    assert.equal(typeof created === 'string' ? null : created.task.state, TaskState.running);
    starterAnswers.open();
    await settled();
    assert.deepEqual(
      store.list().map((task) => task.state),
      [TaskState.running],
    );
  });

  it('keeps a task running whose starter failed after its job was seen ending here; a failed job seen first fails the start.', async () => {
    const tasks = await service();
    const starterAnswers = gate();
    systemd.onStart = async ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName));
      await starterAnswers.promise;
      throw new SystemdError('StartTransientUnit: connection closed', DISCONNECTED);
    };
    systemd.jobSeenHere = Promise.resolve('done');
    const { task } = await tasks.create({ machine: 'echo', parameters: ['echo hi'] });
    starterAnswers.open();
    await settled();
    assert.equal(taskOf(task.taskId).state, TaskState.running);
    assert.equal(systemd.collected.length, 0);

    systemd.onStart = async ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName, failedWith(203).read));
      await new Promise(() => {});
      return 'done';
    };
    systemd.jobSeenHere = Promise.resolve('failed');
    await assert.rejects(tasks.create({ machine: 'echo', parameters: ['echo hi'] }), withCode('START_FAILED'));
    const failed = store.list().find((other) => other.taskId !== task.taskId);
    assert.equal(failed?.exitCode, ExitCode.exception);
  });

  it('reads a task whose start lost the bus once systemd answers again.', async () => {
    const tasks = await service();
    systemd.onStart = ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName));
      throw new SystemdError('StartTransientUnit: connection closed', DISCONNECTED);
    };
    await assert.rejects(tasks.create({ machine: 'echo', parameters: ['echo hi'] }), withCode('SYSTEMD_UNAVAILABLE'));
    const [created, ...others] = store.list();
    assert.ok(created);
    assert.equal(others.length, 0);
    assert.equal(created.state, TaskState.created);
    systemd.emit('reconnected');
    await settled();
    assert.equal(taskOf(created.taskId).state, TaskState.running);
  });
});

describe("A task's unit is stopped, killed and collected by the tracker's unit control", () => {
  it('sends stops, second stops, collections and unfinished deletes to the control it was given (the starter), not to its connection.', async () => {
    const actions: string[] = [];
    const control: UnitControl = {
      stopUnit: async (unit) => void actions.push(`stop ${unit}`),
      killUnit: async (unit, signal) => void actions.push(`kill ${signal} ${unit}`),
      resetFailedUnit: async (unit) => void actions.push(`reset-failed ${unit}`),
    };
    tracker.close();
    tracker = new UnitTracker(store, systemd as unknown as SystemdClient, transitions, usage, log, undefined, control);
    const tasks = await service();
    systemd.onStart = ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName));
      return 'done';
    };
    const { task } = await tasks.create({ machine: 'echo', parameters: ['echo hi'] });
    await tasks.stop(task.taskId);
    transitions.move(taskOf(task.taskId), { state: TaskState.stopping });
    await tasks.stop(task.taskId);
    assert.deepEqual(actions, [`stop ${task.unit}`, `kill 9 ${task.unit}`]);

    actions.length = 0;
    systemd.units.set(task.unit, snapshot(task.unit, failedWith(1).read));
    systemd.signal(task.unit, failedWith(1).signalled);
    await settled();
    assert.equal(taskOf(task.taskId).state, TaskState.exited);
    assert.deepEqual(actions, [`reset-failed ${task.unit}`]);

    actions.length = 0;
    const deleted = insertTask();
    systemd.units.set(deleted.unit, snapshot(deleted.unit));
    store.forget(deleted.taskId);
    await finishDeletes(store, tracker, log);
    assert.deepEqual(actions, [`stop ${deleted.unit}`]);
    assert.deepEqual([systemd.stops, systemd.kills], [[], []]);
  });
});

describe('Deleting a task', () => {
  /** A running task as the lifecycle leaves it: recorded running, its unit followed. */
  async function runningTask(): Promise<{ taskId: string; unit: string }> {
    const task = insertTask();
    systemd.units.set(task.unit, snapshot(task.unit));
    tracker.track(task.unit);
    await tracker.refresh(task.unit);
    assert.equal(taskOf(task.taskId).state, TaskState.running);
    return task;
  }

  /** The unit ends as a stop ends it, and says so. */
  function endUnit(unit: string): void {
    systemd.units.set(
      unit,
      snapshot(unit, { activeState: 'failed', subState: 'failed', result: 'signal', execMainCode: 2, execMainStatus: 15 }),
    );
    systemd.signal(unit, { ActiveState: 'failed', SubState: 'failed', Result: 'signal' });
  }

  it('stores the delete (hidden, stop requested) before it sends StopUnit, and drops the row only once the unit is gone.', async () => {
    const tasks = await service();
    const { taskId, unit } = await runningTask();
    let seenAtStop: { forgotten: boolean; stopRequested: boolean } | undefined;
    systemd.onStop = () => {
      const found = store.find(taskId);
      seenAtStop = found && { forgotten: found.forgotten, stopRequested: found.task.stopRequested };
    };
    await tasks.delete(taskId);
    assert.deepEqual(systemd.stops, [unit]);
    assert.deepEqual(seenAtStop, { forgotten: true, stopRequested: true });
    assert.ok(store.find(taskId), 'the unit still runs: the row is kept');
    assert.equal(store.get(taskId), undefined, 'hidden from the API');
    assert.throws(() => tasks.get(taskId), withCode('TASK_NOT_FOUND'));
    endUnit(unit);
    await settled();
    assert.equal(store.find(taskId), undefined);
    assert.deepEqual(
      systemd.collected.map((each) => each.unit),
      [unit],
    );
  });

  it('keeps a delete whose StopUnit lost the bus, answers 503, and finishDeletes stops the unit when systemd is back.', async () => {
    const tasks = await service();
    const { taskId, unit } = await runningTask();
    systemd.onStop = () => {
      throw new SystemdError('StopUnit: not connected to the system bus', DISCONNECTED);
    };
    await assert.rejects(
      tasks.delete(taskId),
      (error: unknown) => withCode('SYSTEMD_UNAVAILABLE')(error) && (error as Error).message.includes('delete is recorded'),
    );
    assert.equal(store.find(taskId)?.forgotten, true);
    assert.equal(taskOf(taskId).stopRequested, true);
    systemd.onStop = () => {};
    assert.equal(await finishDeletes(store, tracker, log), 1);
    assert.deepEqual(systemd.stops, [unit, unit]);
    endUnit(unit);
    await settled();
    assert.equal(store.find(taskId), undefined);
  });

  it('undoes the delete when systemd refuses the stop: the task is visible again, its stop request as before.', async () => {
    const tasks = await service();
    const { taskId } = await runningTask();
    systemd.onStop = () => {
      throw new SystemdError('StopUnit: Access denied', 'org.freedesktop.DBus.Error.AccessDenied');
    };
    await assert.rejects(tasks.delete(taskId), withCode('SYSTEMD_UNAVAILABLE'));
    assert.equal(store.find(taskId)?.forgotten, false);
    assert.equal(tasks.get(taskId).stopRequested, false);
    assert.equal(await finishDeletes(store, tracker, log), 0);
  });

  it('forgets a finished task once systemd has let its unit go, and finishes the delete later if it could not.', async () => {
    const tasks = await service();
    const { taskId, unit } = insertTask();
    finish(taskId);
    systemd.units.set(unit, snapshot(unit, failedWith(1).read));
    systemd.collectFails = true;
    await tasks.delete(taskId);
    assert.equal(store.find(taskId)?.forgotten, true, 'the unit is still loaded: the row is kept');
    assert.equal(store.get(taskId), undefined);
    systemd.collectFails = false;
    assert.equal(await finishDeletes(store, tracker, log), 1);
    assert.equal(store.find(taskId), undefined);
    assert.equal(systemd.units.has(unit), false);
    assert.deepEqual(systemd.stops, [], 'a finished task is not stopped');
  });

  it('stops a task deleted during its start job once its unit exists, when the first stop found no unit.', async () => {
    const tasks = await service();
    systemd.onStop = (unit) => {
      if (!systemd.units.has(unit)) throw new SystemdError('StopUnit: Unit not loaded', NO_SUCH_UNIT);
    };
    let deleting: Promise<unknown> | undefined;
    systemd.onStart = ({ unitName }) => {
      // The DELETE comes before systemd has made the unit.
      const [created] = store.list();
      assert.ok(created);
      deleting = tasks.delete(created.taskId);
      systemd.units.set(unitName, snapshot(unitName));
      return 'done';
    };
    const { task } = await tasks.create({ machine: 'echo', parameters: ['echo hi'] });
    await deleting;
    assert.deepEqual(systemd.stops, [task.unit, task.unit], 'a second stop once the unit exists');
    assert.equal(store.find(task.taskId)?.forgotten, true);
    assert.equal(store.get(task.taskId), undefined);
  });

  it('finishDeletes settles a deleted task whose unit is gone as stopped on request, and forgets it.', async () => {
    const { taskId, unit } = await runningTask();
    // A delete stored before the stop request was part of it.
    store.forget(taskId);
    store.update(taskId, { stopRequested: false });
    systemd.units.delete(unit);
    systemd.onStop = () => {
      throw new SystemdError('StopUnit: Unit not loaded', NO_SUCH_UNIT);
    };
    const ends: TaskRecord[] = [];
    transitions.on('changed', (task) => ends.push(task));
    await finishDeletes(store, tracker, log);
    await settled();
    assert.equal(store.find(taskId), undefined);
    assert.deepEqual(
      ends.map((task) => [task.taskId, task.state, task.exitCode]),
      [[taskId, TaskState.exited, ExitCode.canceled]],
    );
    assert.deepEqual(systemd.stops, [], 'the unit was found gone before a stop was sent');
  });
});

/** The real store, whose state changes its file system refuses while `full` is set, as SQLite reports a full disk. */
class FillableStore extends TaskStore {
  /** State changes are refused. */
  full = false;
  /** New tasks are refused. */
  refuseInserts = false;
  override insert(...args: Parameters<TaskStore['insert']>): ReturnType<TaskStore['insert']> {
    if (this.refuseInserts) throw diskFull();
    return super.insert(...args);
  }

  override transition(...args: Parameters<TaskStore['transition']>): ReturnType<TaskStore['transition']> {
    if (this.full) throw diskFull();
    return super.transition(...args);
  }
}

const diskFull = () =>
  new StoreUnwritableError('full', 'the-state-dir', Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));

describe('UnitTracker and a store that refuses writes', () => {
  let fillable: FillableStore;
  beforeEach(() => {
    // The same frame as every test, on a store whose writes can be refused.
    tracker.close();
    transitions.close();
    store.close();
    fillable = new FillableStore(join(directory, `store-${++stores}`));
    store = fillable;
    transitions = new TaskTransitions(store, log);
    tracker = new UnitTracker(store, systemd as unknown as SystemdClient, transitions, usage, log);
  });

  it("keeps an ended task's unit until its state is recorded, and records its real exit code once the store takes writes.", async () => {
    const { taskId, unit } = insertTask();
    systemd.units.set(unit, snapshot(unit));
    tracker.track(unit);
    await tracker.refresh(unit);
    assert.equal(taskOf(taskId).state, TaskState.running);

    fillable.full = true;
    systemd.units.set(unit, snapshot(unit, failedWith(4).read));
    systemd.signal(unit, failedWith(4).signalled);
    await settled();
    await tracker.refresh(unit);
    assert.equal(taskOf(taskId).state, TaskState.running, 'a state the store refused was taken as written');
    assert.equal(systemd.collected.length, 0, 'the unit was collected before its result was recorded');
    assert.equal(systemd.watched.has(unit), true);

    fillable.full = false;
    await tracker.refreshFollowed();
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.exited);
    assert.equal(task.exitCode, 4);
    assert.equal(task.result, 'exit-code');
    assert.deepEqual(
      systemd.collected.map((each) => each.unit),
      [unit],
    );
    assert.equal(systemd.watched.size, 0);
  });

  it('answers a failed start START_FAILED when its end cannot be recorded, and keeps its unit until it is.', async () => {
    const tasks = await service();
    systemd.onStart = ({ unitName }) => {
      systemd.units.set(unitName, snapshot(unitName, failedWith(203).read));
      fillable.full = true;
      return 'failed';
    };
    await assert.rejects(tasks.create({ machine: 'echo', parameters: ['echo hi'] }), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.equal(error.code, 'START_FAILED');
      assert.match(error.message, /; recorded once the store takes writes \(no space left for the task store under /);
      return true;
    });
    const [created] = store.list();
    assert.equal(created?.state, TaskState.created);
    assert.equal(systemd.collected.length, 0);

    fillable.full = false;
    await tracker.refreshFollowed();
    const [task] = store.list();
    assert.equal(task?.state, TaskState.exited);
    assert.equal(task.exitCode, 203);
    assert.equal(systemd.collected.length, 1);
    assert.equal(systemd.watched.size, 0);
  });

  it('refuses a start whose record the store cannot take: STORE_UNWRITABLE, and no unit started.', async () => {
    const tasks = await service();
    const starts: string[] = [];
    systemd.onStart = ({ unitName }) => {
      starts.push(unitName);
      return 'done';
    };
    fillable.refuseInserts = true;
    await assert.rejects(tasks.create({ machine: 'echo', parameters: ['echo hi'] }), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.equal(error.code, 'STORE_UNWRITABLE');
      assert.match(error.message, /^task not started: no space left for the task store under /);
      return true;
    });
    assert.deepEqual(starts, []);
    assert.deepEqual(store.list(), []);
    assert.equal(systemd.watched.size, 0);
  });
});
