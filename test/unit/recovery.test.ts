/**
 * Recovery without systemd: what it reads of each unit after a restart, and what it makes of it. A
 * fake SystemdClient answers the listing, InvocationID reads and snapshots from units a test gives
 * it, and records every read; the store, the tracker and the transition function are the real ones.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { ListedUnit, SystemdClient, SystemdClientEvents, UnitSnapshot } from '../../src/systemd/client.js';
import { ExitCode, TaskState, type TaskRecord } from '../../src/tasks/model.js';
import { recoverTasks } from '../../src/tasks/recovery.js';
import { TaskStore } from '../../src/tasks/store.js';
import { UnitTracker } from '../../src/tasks/tracking.js';
import { TaskTransitions } from '../../src/tasks/transitions.js';
import { UsageSampler } from '../../src/tasks/usage-sampler.js';
import { unitNameOf } from '../../src/tasks/unit-names.js';

import { INVOCATION, snapshot } from '../harness/unit-snapshot.js';

const log = pino({ level: 'silent' });

/** The part of SystemdClient recovery and the tracker use, in memory. */
class FakeSystemd extends EventEmitter<SystemdClientEvents> {
  /** The units systemd has loaded; a unit not here is gone. */
  readonly units = new Map<string, UnitSnapshot>();
  readonly watched = new Set<string>();
  /** Every read, in order: `list`, `invocation <unit>`, `snapshot <unit>`. */
  readonly reads: string[] = [];
  /** Units watched when the listing was asked for. */
  watchedAtListing: string[] = [];
  readonly collected: string[] = [];

  watch(unit: string): void {
    this.watched.add(unit);
  }

  unwatch(unit: string): void {
    this.watched.delete(unit);
  }

  async listUnits(): Promise<ListedUnit[]> {
    this.reads.push('list');
    this.watchedAtListing = [...this.watched];
    return [...this.units.values()].map((unit) => ({
      name: unit.unitName,
      loadState: unit.loadState,
      activeState: unit.activeState,
      subState: unit.subState,
    }));
  }

  async getInvocationId(unit: string): Promise<string> {
    this.reads.push(`invocation ${unit}`);
    return this.units.get(unit)?.invocationId ?? '';
  }

  async getUnit(unit: string): Promise<UnitSnapshot | null> {
    this.reads.push(`snapshot ${unit}`);
    return this.units.get(unit) ?? null;
  }

  async cpuUsage(unit: string): Promise<number | null> {
    this.reads.push(`cpu ${unit}`);
    return this.units.get(unit)?.cpuUsageNsec ?? null;
  }

  async collectUnit(unit: string): Promise<boolean> {
    this.collected.push(unit);
    const loaded = this.units.get(unit);
    if (loaded?.activeState === 'active' && loaded.subState === 'running') return false;
    this.units.delete(unit);
    return true;
  }
}

let directory: string;
let stores = 0;
let store: TaskStore;
let usage: UsageSampler;
let systemd: FakeSystemd;
let transitions: TaskTransitions;
let tracker: UnitTracker;
let ids = 0;

/** A task the store has as running (the runner recorded its start), its unit running in systemd. */
function runningTask(): { taskId: string; unit: string } {
  const taskId = (0xb0000000 + ++ids).toString(16);
  const unit = unitNameOf(taskId);
  store.insert({ taskId, machine: 'echo', unit, createdAt: '2026-11-28T10:00:00.000Z' });
  transitions.move(taskOf(taskId), { state: TaskState.running, invocationId: INVOCATION, startedAt: '2026-11-28T10:00:01.000Z' });
  systemd.units.set(unit, snapshot(unit));
  return { taskId, unit };
}

function taskOf(taskId: string): TaskRecord {
  const found = store.find(taskId);
  assert.ok(found, `task ${taskId} is not in the store`);
  return found.task;
}

const recover = () => recoverTasks(store, systemd as unknown as SystemdClient, tracker, transitions, log);

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-recovery-test-'));
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

afterEach(() => {
  tracker.close();
  usage.close();
  transitions.close();
  store.close();
});

describe('recoverTasks', () => {
  it("keeps systemd's CPU time of a task recorded finished whose unit a crash left loaded, then collects the unit.", async () => {
    const { taskId, unit } = runningTask();
    const sampled = {
      cpuNsec: 1_000,
      memoryBytes: 0,
      memoryPeakBytes: 4096,
      ioReadBytes: 1,
      ioWriteBytes: 2,
      tasks: 0,
      sampledAt: '2026-11-28T10:00:02.000Z',
    };
    transitions.move(taskOf(taskId), { state: TaskState.exited, exitCode: 0, usage: sampled });
    systemd.units.set(unit, snapshot(unit, { activeState: 'active', subState: 'exited', cpuUsageNsec: 5_000 }));
    await recover();
    assert.deepEqual(taskOf(taskId).usage, { ...sampled, cpuNsec: 5_000 }, "systemd's figure, the sample's others");
    assert.deepEqual(systemd.reads.slice(1), [`cpu ${unit}`]);
    assert.deepEqual(systemd.collected, [unit]);
  });

  it('watches every active task before it lists the units, so an end after the listing is signalled.', async () => {
    const tasks = [runningTask(), runningTask()];
    await recover();
    assert.equal(systemd.reads[0], 'list');
    assert.deepEqual(systemd.watchedAtListing.sort(), tasks.map((task) => task.unit).sort());
  });

  it('reads only the InvocationID of a unit that runs as recorded, and reads whole the one that ended.', async () => {
    const running = runningTask();
    const ended = runningTask();
    systemd.units.set(
      ended.unit,
      snapshot(ended.unit, { activeState: 'failed', subState: 'failed', result: 'exit-code', execMainCode: 1, execMainStatus: 3 }),
    );
    const report = await recover();
    assert.deepEqual(systemd.reads.slice(1).sort(), [`invocation ${running.unit}`, `snapshot ${ended.unit}`].sort());
    assert.equal(taskOf(running.taskId).state, TaskState.running);
    assert.ok(systemd.watched.has(running.unit), 'the running one is followed');
    const recorded = taskOf(ended.taskId);
    assert.equal(recorded.state, TaskState.exited);
    assert.equal(recorded.exitCode, 3);
    assert.deepEqual(systemd.collected, [ended.unit]);
    assert.deepEqual(
      { reattached: report.reattached, finishedWhileDown: report.finishedWhileDown, collected: report.collected },
      {
        reattached: 1,
        finishedWhileDown: 1,
        collected: 0,
      },
    );
  });

  it('writes nothing for a task that runs as recorded: no event, its record unchanged.', async () => {
    const { taskId } = runningTask();
    const before = taskOf(taskId);
    const events = store.eventsAfter(0, 100).length;
    await recover();
    assert.deepEqual(taskOf(taskId), before);
    assert.equal(store.eventsAfter(0, 100).length, events);
  });

  it('does not take a running unit of another invocation for the task: it is read whole, and the task is lost.', async () => {
    const { taskId, unit } = runningTask();
    systemd.units.set(unit, snapshot(unit, { invocationId: 'ffffffffffffffffffffffffffffffff' }));
    await recover();
    assert.deepEqual(systemd.reads.slice(1), [`invocation ${unit}`, `snapshot ${unit}`]);
    const task = taskOf(taskId);
    assert.equal(task.state, TaskState.lost);
    assert.equal(task.exitCode, ExitCode.undetermined);
    assert.equal(task.invocationId, INVOCATION);
    assert.equal(systemd.units.get(unit)?.subState, 'running', 'the other unit is left alone');
  });

  it('reads whole a task the listing cannot settle: one recorded only as created, and one whose unit is gone.', async () => {
    const created = (0xb0000000 + ++ids).toString(16);
    store.insert({ taskId: created, machine: 'echo', unit: unitNameOf(created), createdAt: '2026-11-28T10:00:00.000Z' });
    systemd.units.set(unitNameOf(created), snapshot(unitNameOf(created)));
    const gone = runningTask();
    systemd.units.delete(gone.unit);
    await recover();
    assert.deepEqual(systemd.reads.slice(1).sort(), [`snapshot ${unitNameOf(created)}`, `snapshot ${gone.unit}`].sort());
    assert.equal(taskOf(created).state, TaskState.running);
    assert.equal(taskOf(created).invocationId, INVOCATION);
    assert.equal(taskOf(gone.taskId).state, TaskState.lost);
  });
});
