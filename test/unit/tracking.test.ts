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
import { pino } from 'pino';
import { MachineSchema } from '../../src/config/schema.js';
import { MachineRegistry } from '../../src/machines/registry.js';
import { DISCONNECTED, SystemdError, type SystemdClient, type SystemdClientEvents, type UnitSnapshot } from '../../src/systemd/client.js';
import type { TaskUnitSpec } from '../../src/systemd/unit-spec.js';
import { TaskError } from '../../src/tasks/errors.js';
import { ExitCode, TaskState, type TaskRecord } from '../../src/tasks/model.js';
import { ParameterHandoff } from '../../src/starter/parameter-handoff.js';
import { TaskUnitStarter } from '../../src/starter/task-unit-starter.js';
import { TaskService } from '../../src/tasks/service.js';
import { TaskStore } from '../../src/tasks/store.js';
import { UnitTracker } from '../../src/tasks/tracking.js';
import { TaskTransitions } from '../../src/tasks/transitions.js';
import { unitNameOf } from '../../src/tasks/unit-names.js';

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
  /** While set, every read waits for it: the test decides when a read ends. */
  hold: Gate | null = null;
  collectFails = false;
  /** What StartTransientUnit does: the result of the start job, or a throw. */
  onStart: (spec: TaskUnitSpec) => string = () => 'done';

  watch(unit: string): void {
    this.watched.add(unit);
  }

  unwatch(unit: string): void {
    this.watched.delete(unit);
  }

  async getUnit(unit: string): Promise<UnitSnapshot | null> {
    this.reads.push(unit);
    if (this.hold) await this.hold.promise;
    return this.units.get(unit) ?? null;
  }

  async startTransientUnit(spec: TaskUnitSpec): Promise<string> {
    return this.onStart(spec);
  }

  async collectUnit(unit: string, known?: UnitSnapshot): Promise<void> {
    this.collected.push({ unit, known });
    if (this.collectFails) throw new Error('ResetFailedUnit: the bus is gone');
    this.units.delete(unit);
  }

  /** A burst of PropertiesChanged, as the client reports it. */
  signal(unit: string, changed: Record<string, unknown> = { ActiveState: 'active', SubState: 'running' }): void {
    this.emit('unitChanged', { unitName: unit, changed });
  }
}

function snapshot(unit: string, status: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return {
    unitName: unit,
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    result: 'success',
    execMainCode: 0,
    execMainStatus: 0,
    invocationId: 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5',
    activeEnterTimestamp: 1_795_000_000_000_000n,
    inactiveEnterTimestamp: 0n,
    execMainExitTimestamp: 0n,
    ...status,
  };
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

/** Everything the tracker has pending (a scheduled read, a read under way) has run. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

let directory: string;
let stores = 0;
let store: TaskStore;
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
  tracker = new UnitTracker(store, systemd as unknown as SystemdClient, transitions, log);
});

afterEach(async () => {
  systemd.hold?.open();
  await settled();
  tracker.close();
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

describe('UnitTracker and the lifecycle', () => {
  async function service(): Promise<TaskService> {
    const handoff = new ParameterHandoff(join(directory, `parameters-${stores}`));
    await handoff.open();
    const machines = new MachineRegistry({ echo: MachineSchema.parse({ builtin: 'echo' }) });
    const starter = new TaskUnitStarter(systemd as unknown as SystemdClient, handoff, {
      machines,
      slice: 'tessia.slice',
      maxParameterBytes: 10_000,
    });
    const options = { stopWaitMs: 0, maxActiveTasks: 10, maxParameterBytes: 10_000, starter };
    return new TaskService(store, systemd as unknown as SystemdClient, tracker, transitions, machines, options, log);
  }

  const withCode = (code: string) => (error: unknown) => error instanceof TaskError && error.code === code;

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
