/** The one transition function and whenFinished, on the real store. */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import {
  ExitCode,
  LEGAL_NEXT,
  TASK_STATES,
  TaskState,
  isFinishedState,
  type FinishedTask,
  type TaskRecord,
} from '../../src/tasks/model.js';
import type { TaskPatch } from '../../src/tasks/store.js';
import { TaskStore } from '../../src/tasks/store.js';
import { TaskTransitions } from '../../src/tasks/transitions.js';
import { unitNameOf } from '../../src/tasks/unit-names.js';

const log = pino({ level: 'silent' });

let directory: string;
let stores = 0;
let store: TaskStore;
let transitions: TaskTransitions;
let changes: TaskRecord[];
let ids = 0;

function insertTask(): string {
  const taskId = (0xb0000000 + ++ids).toString(16);
  store.insert({ taskId, machine: 'echo', unit: unitNameOf(taskId), createdAt: '2026-11-28T10:00:00.000Z' });
  return taskId;
}

function taskOf(taskId: string): TaskRecord {
  const found = store.find(taskId);
  assert.ok(found, `task ${taskId} is not in the store`);
  return found.task;
}

/** The patch that moves a task to `state`: a finished one needs its exit code. */
function patchTo(state: TaskState): TaskPatch {
  return isFinishedState(state) ? { state, exitCode: ExitCode.undetermined, detail: `moved to ${state}` } : { state };
}

/** A task put in `state` directly in the store, as if it had got there before. */
function taskIn(state: TaskState): string {
  const taskId = insertTask();
  const finishedAt = isFinishedState(state) ? { finishedAt: '2026-11-28T10:00:01.000Z' } : {};
  store.update(taskId, { ...patchTo(state), ...finishedAt });
  return taskId;
}

/** The task ids that have a whenFinished waiter: none may be left once every waiter is done. */
function waitingTasks(): string[] {
  return [...(transitions as unknown as { finishWaiters: Map<string, unknown> }).finishWaiters.keys()];
}

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-transitions-test-'));
});

after(() => {
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  store = new TaskStore(join(directory, `store-${++stores}`));
  transitions = new TaskTransitions(store, log);
  changes = [];
  transitions.on('changed', (task) => changes.push(task));
});

afterEach(() => {
  assert.deepEqual(waitingTasks(), [], 'a whenFinished waiter was left behind');
  transitions.close();
  store.close();
});

describe('TaskTransitions.move', () => {
  it('writes a legal move and tells the listeners once, with the record as stored.', () => {
    const taskId = insertTask();
    transitions.move(taskOf(taskId), { state: TaskState.running, invocationId: 'c0ffee' });
    assert.equal(changes.length, 1);
    assert.deepEqual(changes[0], taskOf(taskId));
    assert.equal(taskOf(taskId).state, TaskState.running);
    assert.equal(taskOf(taskId).invocationId, 'c0ffee');
  });

  it('dates the end of a finished task by systemd’s clock when given, else by now.', () => {
    const bySystemd = insertTask();
    transitions.move(taskOf(bySystemd), patchTo(TaskState.exited), 1_795_000_000_123_456n);
    assert.equal(taskOf(bySystemd).finishedAt, '2026-11-18T11:06:40.123456Z');
    const byNow = insertTask();
    const before = Date.now();
    transitions.move(taskOf(byNow), patchTo(TaskState.lost));
    const finishedAt = Date.parse(taskOf(byNow).finishedAt ?? '');
    assert.ok(finishedAt >= before - 1 && finishedAt <= Date.now() + 1, `finishedAt ${finishedAt} is not now`);
  });

  it('keeps a finished task as it is: finished is final, whatever the patch.', () => {
    for (const state of [TaskState.exited, TaskState.lost]) {
      const taskId = taskIn(state);
      const finished = taskOf(taskId);
      for (const next of TASK_STATES) transitions.move(finished, { ...patchTo(next), exitCode: 7, detail: 'changed' });
      transitions.move(finished, { invocationId: 'changed' });
      assert.deepEqual(taskOf(taskId), finished);
    }
    assert.equal(changes.length, 0);
  });

  it('decides on the store’s record, not on the caller’s older copy.', () => {
    const finishedMeanwhile = insertTask();
    const staleCreated = taskOf(finishedMeanwhile);
    transitions.move(staleCreated, patchTo(TaskState.exited));
    const finished = taskOf(finishedMeanwhile);
    transitions.move(staleCreated, { state: TaskState.running });
    assert.deepEqual(taskOf(finishedMeanwhile), finished);

    // running → running would be no move at all; the store has stopping, and stopping → running is illegal.
    const stoppingMeanwhile = taskIn(TaskState.running);
    const staleRunning = taskOf(stoppingMeanwhile);
    store.update(stoppingMeanwhile, { state: TaskState.stopping });
    transitions.move(staleRunning, { state: TaskState.running });
    assert.equal(taskOf(stoppingMeanwhile).state, TaskState.stopping);
    assert.equal(changes.length, 1);
  });

  for (const from of TASK_STATES) {
    for (const to of TASK_STATES) {
      if (from === to) continue;
      const legal = LEGAL_NEXT[from].includes(to);
      it(`${legal ? 'moves' : 'refuses to move'} a task from ${from} to ${to}.`, () => {
        const taskId = taskIn(from);
        transitions.move(taskOf(taskId), patchTo(to));
        assert.equal(taskOf(taskId).state, legal ? to : from);
        assert.equal(changes.length, legal ? 1 : 0);
      });
    }
  }

  it('allows exactly the moves of a task’s life: forward, never out of a finished state.', () => {
    assert.deepEqual(LEGAL_NEXT, {
      created: ['running', 'stopping', 'exited', 'lost'],
      running: ['stopping', 'exited', 'lost'],
      stopping: ['exited', 'lost'],
      exited: [],
      lost: [],
    });
  });

  it('writes nothing and tells no one for a patch that repeats the record; a patch with one new value is written.', () => {
    const taskId = taskIn(TaskState.stopping);
    store.update(taskId, { invocationId: 'c0ffee', startedAt: '2026-11-28T10:00:00.500Z' });
    let writes = 0;
    const transition = store.transition.bind(store);
    store.transition = (...args) => {
      writes += 1;
      return transition(...args);
    };
    const record = taskOf(taskId);
    transitions.move(record, { state: TaskState.stopping });
    transitions.move(record, { state: TaskState.stopping, invocationId: 'c0ffee', startedAt: '2026-11-28T10:00:00.500Z' });
    transitions.move(record, {});
    assert.equal(writes, 0);
    assert.equal(changes.length, 0);
    assert.deepEqual(taskOf(taskId), record);

    transitions.move(record, { state: TaskState.stopping, detail: 'a new detail' });
    assert.equal(writes, 1);
    assert.equal(changes.length, 1);
    assert.equal(taskOf(taskId).detail, 'a new detail');
    // Usage is compared by value: the same figures are not written again, other ones are.
    const usage = {
      cpuNsec: 5,
      memoryBytes: 6,
      memoryPeakBytes: 7,
      ioReadBytes: 8,
      ioWriteBytes: 9,
      tasks: 1,
      sampledAt: '2026-11-28T10:00:02.000Z',
    };
    transitions.move(taskOf(taskId), { usage });
    transitions.move(taskOf(taskId), { usage: { ...usage } });
    assert.equal(writes, 2);
    transitions.move(taskOf(taskId), { usage: { ...usage, cpuNsec: 6 } });
    assert.equal(writes, 3);
    assert.equal(taskOf(taskId).usage?.cpuNsec, 6);
  });

  it('logs a change after what waited for it has run (a stop’s answer), in the next turn.', async () => {
    const order: string[] = [];
    const lines = new TaskTransitions(
      store,
      pino({ level: 'info' }, { write: (line: string) => order.push(`log: ${JSON.parse(line).msg}`) }),
    );
    const taskId = taskIn(TaskState.running);
    const answered = lines.whenFinished(taskId, new AbortController().signal).then(() => order.push('answered'));
    lines.move(taskOf(taskId), patchTo(TaskState.exited));
    await answered;
    assert.deepEqual(order, ['answered'], 'not logged before the waiter ran');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['answered', 'log: task exited']);
    lines.close();
  });

  it('ignores a move of a task the store does not have.', () => {
    const taskId = insertTask();
    const record = taskOf(taskId);
    store.remove(taskId);
    transitions.move(record, { state: TaskState.running });
    assert.equal(store.find(taskId), undefined);
    assert.equal(changes.length, 0);
  });
});

describe('TaskTransitions.whenFinished', () => {
  it('resolves with the finished task once it finishes.', async () => {
    const taskId = insertTask();
    const waiting = transitions.whenFinished(taskId, new AbortController().signal);
    transitions.move(taskOf(taskId), { state: TaskState.running });
    transitions.move(taskOf(taskId), { state: TaskState.exited, exitCode: 4, detail: 'exited with status 4' });
    const finished = await waiting;
    assert.equal(finished?.state, TaskState.exited);
    assert.equal(finished.exitCode, 4);
  });

  it('resolves at once for a task that has finished already.', async () => {
    const taskId = taskIn(TaskState.lost);
    const finished = await transitions.whenFinished(taskId, new AbortController().signal);
    assert.equal(finished?.state, TaskState.lost);
  });

  it('resolves with undefined for a task the store does not have.', async () => {
    assert.equal(await transitions.whenFinished('0badc0de', new AbortController().signal), undefined);
  });

  it('resolves with undefined when the signal aborts first, and forgets the waiter.', async () => {
    const taskId = insertTask();
    const controller = new AbortController();
    const waiting = transitions.whenFinished(taskId, controller.signal);
    assert.deepEqual(waitingTasks(), [taskId]);
    controller.abort();
    assert.equal(await waiting, undefined);
    assert.deepEqual(waitingTasks(), []);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    transitions.move(taskOf(taskId), patchTo(TaskState.exited));
  });

  it('resolves with undefined for a signal aborted before the call, leaving nothing behind.', async () => {
    const taskId = insertTask();
    const signal = AbortSignal.abort();
    assert.equal(await transitions.whenFinished(taskId, signal), undefined);
    assert.deepEqual(waitingTasks(), []);
    assert.equal(getEventListeners(signal, 'abort').length, 0);
  });

  it('misses no finish that comes right after the call, before any await.', async () => {
    const taskId = insertTask();
    const waiting = transitions.whenFinished(taskId, new AbortController().signal);
    transitions.move(taskOf(taskId), patchTo(TaskState.lost));
    assert.equal((await waiting)?.state, TaskState.lost);
  });

  it('misses no finish that comes while a listener of the change is told.', async () => {
    const taskId = insertTask();
    let fromListener: Promise<FinishedTask | undefined> | undefined;
    // A follower that starts waiting when it hears the task run, as a log stream does.
    transitions.once('changed', () => {
      fromListener = transitions.whenFinished(taskId, new AbortController().signal);
      transitions.move(taskOf(taskId), patchTo(TaskState.exited));
    });
    transitions.move(taskOf(taskId), { state: TaskState.running });
    assert.ok(fromListener);
    assert.equal((await fromListener)?.state, TaskState.exited);
  });

  it('resolves every waiter of a task, and removes their abort listeners.', async () => {
    const taskId = insertTask();
    const controller = new AbortController();
    const waiters = [1, 2, 3].map(() => transitions.whenFinished(taskId, controller.signal));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 3);
    transitions.move(taskOf(taskId), patchTo(TaskState.exited));
    const finished = await Promise.all(waiters);
    assert.equal(finished.length, 3);
    for (const task of finished) assert.equal(task?.state, TaskState.exited);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.deepEqual(waitingTasks(), []);
  });

  it('keeps the waiters of one task when another task’s waiter aborts.', async () => {
    const kept = insertTask();
    const aborted = insertTask();
    const controller = new AbortController();
    const keptWaiting = transitions.whenFinished(kept, new AbortController().signal);
    const abortedWaiting = transitions.whenFinished(aborted, controller.signal);
    controller.abort();
    assert.equal(await abortedWaiting, undefined);
    assert.deepEqual(waitingTasks(), [kept]);
    transitions.move(taskOf(kept), patchTo(TaskState.exited));
    assert.equal((await keptWaiting)?.state, TaskState.exited);
  });
});
