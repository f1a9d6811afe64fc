import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { TaskState, type TaskRecord } from '../../src/tasks/model.js';
import Database from 'better-sqlite3';
import { TaskStore, type TaskPage } from '../../src/tasks/store.js';
import { SCHEMA_VERSION, StoreVersionError } from '../../src/tasks/store-schema.js';
import { seeded } from '../harness/seeded.js';

let directory: string;
let stateDir: string;
let stores = 0;
let store: TaskStore;

/** A fresh store in a directory of its own. */
function openStore(): TaskStore {
  stateDir = join(directory, `store-${++stores}`);
  return new TaskStore(stateDir);
}

const CREATED_AT = '2026-11-27T23:04:16.000Z';

function insertTask(taskId: string, machine = 'echo'): void {
  store.insert({ taskId, machine, unit: `tessia-task-${taskId}.service`, createdAt: CREATED_AT });
}

function getTask(taskId: string): TaskRecord {
  const task = store.get(taskId);
  assert.ok(task, `task ${taskId} is not in the store`);
  return task;
}

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-store-test-'));
});

after(() => {
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  store = openStore();
});

afterEach(() => {
  store.close();
});

describe('TaskStore insert and get', () => {
  it('gives back a new task as created, with nothing about its run yet.', () => {
    insertTask('a1b2c3d4');
    assert.deepEqual(getTask('a1b2c3d4'), {
      taskId: 'a1b2c3d4',
      machine: 'echo',
      unit: 'tessia-task-a1b2c3d4.service',
      state: TaskState.created,
      exitCode: null,
      result: null,
      detail: null,
      createdAt: CREATED_AT,
      startedAt: null,
      finishedAt: null,
      invocationId: null,
      stopRequested: false,
      usage: null,
    });
  });

  it('gives nothing for an unknown task id.', () => {
    insertTask('a1b2c3d4');
    assert.equal(store.get('00000000'), undefined);
    assert.equal(store.find('00000000'), undefined);
  });

  it('refuses a second task with the same id.', () => {
    insertTask('a1b2c3d4');
    assert.throws(() => insertTask('a1b2c3d4'));
    assert.equal(store.list().length, 1);
  });

  it('creates its state directory when it does not exist.', () => {
    store.close();
    store = new TaskStore(join(directory, 'not', 'there', 'yet'));
    insertTask('a1b2c3d4');
    assert.equal(getTask('a1b2c3d4').taskId, 'a1b2c3d4');
  });

  it('keeps its tasks across a close and a reopen of the same directory.', () => {
    insertTask('a1b2c3d4');
    store.update('a1b2c3d4', { state: TaskState.running, startedAt: '2026-11-27T23:04:17.000Z' });
    store.close();
    store = new TaskStore(stateDir);
    const task = getTask('a1b2c3d4');
    assert.equal(task.state, TaskState.running);
    assert.equal(task.startedAt, '2026-11-27T23:04:17.000Z');
  });
});

describe('TaskStore update', () => {
  it('changes only the fields given.', () => {
    insertTask('a1b2c3d4');
    const before = getTask('a1b2c3d4');
    store.update('a1b2c3d4', { state: TaskState.running, startedAt: '2026-11-27T23:04:17.000Z', invocationId: 'f00d' });
    assert.deepEqual(getTask('a1b2c3d4'), {
      ...before,
      state: TaskState.running,
      startedAt: '2026-11-27T23:04:17.000Z',
      invocationId: 'f00d',
    });
  });

  it('keeps stop requested as a boolean.', () => {
    insertTask('a1b2c3d4');
    store.update('a1b2c3d4', { state: TaskState.stopping, stopRequested: true });
    const task = getTask('a1b2c3d4');
    assert.equal(task.state, TaskState.stopping);
    assert.equal(task.stopRequested, true);
  });

  it('records how a task ended: exit code, result, end time and detail.', () => {
    insertTask('a1b2c3d4');
    store.update('a1b2c3d4', {
      state: TaskState.exited,
      exitCode: -1,
      result: 'exit-code',
      finishedAt: '2026-11-27T23:05:00.000Z',
      detail: 'stopped on request',
    });
    const task = getTask('a1b2c3d4');
    assert.equal(task.state, TaskState.exited);
    assert.equal(task.exitCode, -1);
    assert.equal(task.result, 'exit-code');
    assert.equal(task.finishedAt, '2026-11-27T23:05:00.000Z');
    assert.equal(task.detail, 'stopped on request');
  });

  it('reports a finished task without a recorded exit code as undetermined (-99).', () => {
    insertTask('a1b2c3d4');
    store.update('a1b2c3d4', { state: TaskState.lost, finishedAt: '2026-11-27T23:05:00.000Z' });
    const task = getTask('a1b2c3d4');
    assert.equal(task.state, TaskState.lost);
    assert.equal(task.exitCode, -99);
  });

  it('changes only the task named.', () => {
    insertTask('a1b2c3d4');
    insertTask('e5f60718');
    store.update('a1b2c3d4', { state: TaskState.running });
    assert.equal(getTask('a1b2c3d4').state, TaskState.running);
    assert.equal(getTask('e5f60718').state, TaskState.created);
  });

  it('changes nothing for an empty patch.', () => {
    insertTask('a1b2c3d4');
    const before = getTask('a1b2c3d4');
    store.update('a1b2c3d4', {});
    assert.deepEqual(getTask('a1b2c3d4'), before);
  });
});

describe('TaskStore lists and counts', () => {
  it('lists tasks in creation order, not id order.', () => {
    for (const taskId of ['cccccccc', 'aaaaaaaa', 'bbbbbbbb']) insertTask(taskId);
    const tasks = store.list();
    assert.equal(tasks.length, 3);
    assert.deepEqual(
      tasks.map((task) => task.taskId),
      ['cccccccc', 'aaaaaaaa', 'bbbbbbbb'],
    );
  });

  it('lists ids and states only, in creation order, for the brief list.', () => {
    for (const taskId of ['cccccccc', 'aaaaaaaa']) insertTask(taskId);
    store.update('aaaaaaaa', { state: TaskState.running });
    assert.deepEqual(store.listBrief(), [
      { taskId: 'cccccccc', state: TaskState.created },
      { taskId: 'aaaaaaaa', state: TaskState.running },
    ]);
  });

  it('lists and counts as active the created, running and stopping tasks only.', () => {
    for (const taskId of ['created1', 'running1', 'stopping', 'exited01', 'lost0001']) insertTask(taskId);
    store.update('running1', { state: TaskState.running });
    store.update('stopping', { state: TaskState.stopping, stopRequested: true });
    store.update('exited01', { state: TaskState.exited, exitCode: 0, finishedAt: CREATED_AT });
    store.update('lost0001', { state: TaskState.lost, finishedAt: CREATED_AT });
    const active = store.listActive();
    assert.equal(active.length, 3);
    assert.deepEqual(
      active.map((task) => task.state),
      [TaskState.created, TaskState.running, TaskState.stopping],
    );
    assert.equal(store.countActive(), 3);
  });

  it('counts tasks by state.', () => {
    for (const taskId of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) insertTask(taskId);
    store.update('bbbbbbbb', { state: TaskState.running });
    store.update('cccccccc', { state: TaskState.running });
    assert.deepEqual(store.countByState(), { created: 1, running: 2 });
  });

  it('counts nothing in an empty store.', () => {
    assert.deepEqual(store.list(), []);
    assert.deepEqual(store.countByState(), {});
    assert.equal(store.countActive(), 0);
  });

  it('can take a write.', () => {
    assert.equal(store.writable(), true);
  });
});

describe('TaskStore forget and remove', () => {
  it('hides a forgotten task from get, the lists and the counts by state.', () => {
    insertTask('aaaaaaaa');
    insertTask('bbbbbbbb');
    store.forget('aaaaaaaa');
    assert.equal(store.get('aaaaaaaa'), undefined);
    assert.deepEqual(
      store.list().map((task) => task.taskId),
      ['bbbbbbbb'],
    );
    assert.deepEqual(store.listBrief(), [{ taskId: 'bbbbbbbb', state: TaskState.created }]);
    assert.deepEqual(store.countByState(), { created: 1 });
  });

  it('still finds a forgotten task, marked as forgotten.', () => {
    insertTask('aaaaaaaa');
    store.forget('aaaaaaaa');
    const found = store.find('aaaaaaaa');
    assert.ok(found);
    assert.equal(found.forgotten, true);
    assert.equal(found.task.taskId, 'aaaaaaaa');
  });

  it('keeps tracking a forgotten task that still runs, until it is removed.', () => {
    insertTask('aaaaaaaa');
    store.update('aaaaaaaa', { state: TaskState.running });
    store.forget('aaaaaaaa');
    assert.deepEqual(
      store.listActive().map((task) => task.taskId),
      ['aaaaaaaa'],
    );
    assert.equal(store.countActive(), 1);
    store.remove('aaaaaaaa');
    assert.equal(store.listActive().length, 0);
    assert.equal(store.countActive(), 0);
  });

  it('removes a task for good.', () => {
    insertTask('aaaaaaaa');
    insertTask('bbbbbbbb');
    store.remove('aaaaaaaa');
    assert.equal(store.find('aaaaaaaa'), undefined);
    assert.deepEqual(
      store.list().map((task) => task.taskId),
      ['bbbbbbbb'],
    );
  });

  it('lets a removed task id be used again.', () => {
    insertTask('aaaaaaaa');
    store.remove('aaaaaaaa');
    insertTask('aaaaaaaa');
    assert.equal(getTask('aaaaaaaa').state, TaskState.created);
  });
});

describe("TaskStore's records of active tasks", () => {
  const USAGE = { cpuNsec: 0, memoryBytes: 1, memoryPeakBytes: 2, ioReadBytes: 3, ioWriteBytes: 4, tasks: 1, sampledAt: CREATED_AT };
  /** The task as a fresh query reads it: among the visible ones, or the forgotten ones. */
  function fresh(taskId: string): { task: TaskRecord; forgotten: boolean } | undefined {
    const visible = store.list().find((task) => task.taskId === taskId);
    if (visible) return { task: visible, forgotten: false };
    const forgotten = store.listForgotten().find((task) => task.taskId === taskId);
    return forgotten && { task: forgotten, forgotten: true };
  }

  it('gives what a fresh query gives after every kind of write, in 600 random writes, read between them', () => {
    const random = seeded(29);
    const ids = Array.from({ length: 8 }, (_, i) => `c0ffee0${i}`);
    const states = [TaskState.running, TaskState.stopping, TaskState.exited, TaskState.lost];
    for (let step = 0; step < 600; step++) {
      const taskId = ids[random(ids.length)] as string;
      const exists = store.find(taskId) !== undefined;
      const action = random(7);
      if (!exists) insertTask(taskId);
      else if (action === 0) store.update(taskId, { detail: `step ${step}`, usage: { ...USAGE, cpuNsec: step } });
      else if (action === 1) {
        const state = states[random(states.length)] as TaskState;
        const finished = state === TaskState.exited || state === TaskState.lost;
        store.transition(
          taskId,
          finished ? { state, exitCode: step % 3, finishedAt: CREATED_AT } : { state, startedAt: CREATED_AT },
          false,
        );
      } else if (action === 2) store.forget(taskId);
      else if (action === 3) store.unforget(taskId, random(2) === 0);
      else if (action === 4) store.remove(taskId);
      else if (action === 5) store.removeAll([taskId, ids[random(ids.length)] as string]);
      else store.update(taskId, { stopRequested: random(2) === 0 });
      for (const id of ids) assert.deepEqual(store.find(id), fresh(id), `step ${step}, task ${id}`);
    }
  });

  it('give the record as it was after a write that failed after its update and was rolled back', () => {
    insertTask('c0ffee20');
    const before = store.find('c0ffee20');
    // The task's row is updated, then its event refused: the whole transaction is rolled back.
    const other = new Database(join(stateDir, 'tasks.sqlite3'));
    other.exec(`CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    try {
      assert.throws(() => store.transition('c0ffee20', { state: TaskState.running, startedAt: CREATED_AT }, false), /refused/);
    } finally {
      other.exec('DROP TRIGGER refuse_events');
      other.close();
    }
    assert.deepEqual(store.find('c0ffee20'), fresh('c0ffee20'));
    assert.deepEqual(store.find('c0ffee20'), before);
    assert.equal(store.find('c0ffee20')?.task.state, TaskState.created);
  });

  it('are not changed by a caller (frozen), and keep no finished task', () => {
    insertTask('c0ffee10');
    const found = store.find('c0ffee10');
    assert.ok(found);
    assert.throws(() => {
      (found.task as { detail: string | null }).detail = 'changed';
    }, TypeError);
    store.transition('c0ffee10', { state: TaskState.exited, exitCode: 0, finishedAt: CREATED_AT }, false);
    assert.notEqual(store.find('c0ffee10'), store.find('c0ffee10'), 'a finished task is read each time');
  });
});

describe('TaskStore pages', () => {
  const ids = (tasks: { taskId: string }[]) => tasks.map((task) => task.taskId);

  it('gives every task in creation order, a page at a time, with the cursor of the next page while more follow.', () => {
    const all = ['cccccccc', 'aaaaaaaa', 'eeeeeeee', 'bbbbbbbb', 'dddddddd'];
    for (const taskId of all) insertTask(taskId);
    const first = store.page('brief', { limit: 2 });
    assert.deepEqual(first.tasks, [
      { taskId: 'cccccccc', state: TaskState.created },
      { taskId: 'aaaaaaaa', state: TaskState.created },
    ]);
    assert.equal(typeof first.next, 'number');
    const second = store.page('brief', { limit: 2, ...(first.next === undefined ? {} : { after: first.next }) });
    assert.deepEqual(ids(second.tasks), ['eeeeeeee', 'bbbbbbbb']);
    const third = store.page('brief', { limit: 2, ...(second.next === undefined ? {} : { after: second.next }) });
    assert.deepEqual(ids(third.tasks), ['dddddddd']);
    assert.equal(third.next, undefined, 'the last page has no next');
    assert.equal(store.page('brief', { limit: 5 }).next, undefined, 'a page that holds them all has no next');
    assert.deepEqual(ids(store.page('brief', { limit: 4 }).tasks), all.slice(0, 4));
  });

  it('gives every field in the full view, and skips forgotten tasks.', () => {
    for (const taskId of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) insertTask(taskId);
    store.forget('bbbbbbbb');
    const page = store.page('full', { limit: 10 });
    assert.deepEqual(page.tasks, [getTask('aaaaaaaa'), getTask('cccccccc')]);
  });

  it('gives the newest first, each page older than the one before, with the cursor of the next.', () => {
    const all = ['cccccccc', 'aaaaaaaa', 'eeeeeeee', 'bbbbbbbb', 'dddddddd'];
    for (const taskId of all) insertTask(taskId);
    const seen: string[] = [];
    let after: number | undefined;
    do {
      const page = store.page('full', { limit: 2, newestFirst: true, ...(after === undefined ? {} : { after }) });
      seen.push(...ids(page.tasks));
      after = page.next;
    } while (after !== undefined);
    assert.deepEqual(seen, [...all].reverse());
  });

  it('loses no task when the last task of a page is deleted before the next page is read.', () => {
    for (const taskId of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) insertTask(taskId);
    const first = store.page('brief', { limit: 2 });
    store.remove('bbbbbbbb');
    assert.ok(first.next !== undefined);
    assert.deepEqual(ids(store.page('brief', { limit: 2, after: first.next }).tasks), ['cccccccc']);
  });
});

describe('TaskStore events', () => {
  it('records "created" with the task, and one event per change of state, none for other changes.', () => {
    insertTask('a1b2c3d4');
    const running = store.transition('a1b2c3d4', { state: TaskState.running, startedAt: '2026-11-27T23:04:17.000000Z' }, false);
    assert.equal(running?.event?.state, TaskState.running);
    assert.equal(running.event.at, '2026-11-27T23:04:17.000000Z', 'a start is dated when systemd started it');
    assert.equal(store.transition('a1b2c3d4', { invocationId: 'c0ffee' }, false)?.event, undefined);
    const exited = store.transition(
      'a1b2c3d4',
      {
        state: TaskState.exited,
        exitCode: 3,
        result: 'exit-code',
        detail: 'exited with status 3',
        finishedAt: '2026-11-27T23:05:00.000000Z',
      },
      true,
    );
    assert.deepEqual(
      store.eventsAfter(0, 10).map(({ state, exitCode, result, recovered, at }) => ({ state, exitCode, result, recovered, at })),
      [
        { state: TaskState.created, exitCode: null, result: null, recovered: false, at: CREATED_AT },
        { state: TaskState.running, exitCode: null, result: null, recovered: false, at: '2026-11-27T23:04:17.000000Z' },
        { state: TaskState.exited, exitCode: 3, result: 'exit-code', recovered: true, at: '2026-11-27T23:05:00.000000Z' },
      ],
    );
    assert.equal(store.lastEventId(), exited?.event?.id);
  });

  it('reads events after an id, a page at a time, by task or machine.', () => {
    insertTask('a1b2c3d4', 'echo');
    insertTask('b1b2c3d4', 'powerman');
    store.transition('a1b2c3d4', { state: TaskState.running }, false);
    const all = store.eventsAfter(0, 10);
    assert.deepEqual(
      all.map((event) => [event.taskId, event.state]),
      [
        ['a1b2c3d4', 'created'],
        ['b1b2c3d4', 'created'],
        ['a1b2c3d4', 'running'],
      ],
    );
    const [first, second] = all;
    assert.ok(first && second);
    assert.deepEqual(store.eventsAfter(first.id, 1), [second]);
    assert.deepEqual(
      store.eventsAfter(0, 10, { taskId: 'a1b2c3d4' }).map((event) => event.state),
      ['created', 'running'],
    );
    assert.deepEqual(
      store.eventsAfter(0, 10, { machine: 'powerman' }).map((event) => event.taskId),
      ['b1b2c3d4'],
    );
  });

  it('says a DELETE with an event (deleted, the state it had), keeps the events once the row goes, and prunes them by age then.', () => {
    insertTask('a1b2c3d4');
    const deleted = store.forget('a1b2c3d4');
    assert.equal(deleted?.deleted, true);
    assert.equal(deleted.state, TaskState.created);
    store.remove('a1b2c3d4');
    assert.deepEqual(
      store.eventsAfter(0, 10).map((event) => [event.state, event.deleted]),
      [
        [TaskState.created, false],
        [TaskState.created, true],
      ],
      'a subscriber that resumes later learns of the delete',
    );
    const last = store.lastEventId();
    assert.equal(store.pruneOrphanEvents('2000-01-01T00:00:00.000Z'), 0, 'younger than the cutoff: kept');
    assert.equal(store.pruneOrphanEvents('2999-01-01T00:00:00.000Z'), 2);
    insertTask('b1b2c3d4');
    assert.ok(store.lastEventId() > last, 'ids are never reused');
    assert.equal(store.pruneOrphanEvents('2999-01-01T00:00:00.000Z'), 0, "a kept task's events are not orphans");
  });
});

describe('TaskStore idempotency keys', () => {
  const key = (digest = 'd1') => ({ key: 'retry-1', digest });

  it('finds the task of a key, with the digest of its request.', () => {
    store.insert({ taskId: 'a1b2c3d4', machine: 'echo', unit: 'tessia-task-a1b2c3d4.service', createdAt: CREATED_AT }, key());
    assert.equal(store.findByKey('retry-1')?.task.taskId, 'a1b2c3d4');
    assert.equal(store.findByKey('retry-1')?.digest, 'd1');
    assert.equal(store.findByKey('other'), undefined);
  });

  it('refuses a second task with a key a visible task holds.', () => {
    store.insert({ taskId: 'a1b2c3d4', machine: 'echo', unit: 'tessia-task-a1b2c3d4.service', createdAt: CREATED_AT }, key());
    assert.throws(() =>
      store.insert({ taskId: 'b1b2c3d4', machine: 'echo', unit: 'tessia-task-b1b2c3d4.service', createdAt: CREATED_AT }, key()),
    );
    assert.equal(store.find('b1b2c3d4'), undefined, 'nothing written');
    assert.equal(store.eventsAfter(0, 10).length, 1, 'and no event');
  });

  it('lets a key go with its task: hidden at DELETE, free for a new task, gone when the row goes.', () => {
    store.insert({ taskId: 'a1b2c3d4', machine: 'echo', unit: 'tessia-task-a1b2c3d4.service', createdAt: CREATED_AT }, key('d1'));
    store.forget('a1b2c3d4');
    assert.equal(store.findByKey('retry-1'), undefined);
    store.insert({ taskId: 'b1b2c3d4', machine: 'echo', unit: 'tessia-task-b1b2c3d4.service', createdAt: CREATED_AT }, key('d2'));
    assert.equal(store.findByKey('retry-1')?.task.taskId, 'b1b2c3d4');
    store.remove('b1b2c3d4');
    assert.equal(store.findByKey('retry-1'), undefined);
  });
});

describe('TaskStore filters', () => {
  beforeEach(() => {
    const rows: [string, string, string][] = [
      ['00000001', 'echo', '2026-11-01T00:00:00.000000Z'],
      ['00000002', 'powerman', '2026-11-02T00:00:00.000000Z'],
      ['00000003', 'echo', '2026-11-03T00:00:00.000000Z'],
      ['00000004', 'echo', '2026-11-04T00:00:00.000000Z'],
    ];
    for (const [taskId, machine, createdAt] of rows) store.insert({ taskId, machine, unit: `tessia-task-${taskId}.service`, createdAt });
    store.transition('00000003', { state: TaskState.running }, false);
    store.transition('00000004', { state: TaskState.exited, exitCode: 0 }, false);
  });
  const ids = (filter: Parameters<TaskStore['page']>[1]['filter'], limit = 10) =>
    store.page('brief', { limit, ...(filter ? { filter } : {}) }).tasks.map((task) => task.taskId);

  it('filters by state, machine and creation time, each alone and together.', () => {
    assert.deepEqual(ids({ states: [TaskState.running, TaskState.exited] }), ['00000003', '00000004']);
    assert.deepEqual(ids({ machine: 'echo' }), ['00000001', '00000003', '00000004']);
    assert.deepEqual(ids({ since: '2026-11-02T00:00:00.000000Z' }), ['00000002', '00000003', '00000004']);
    assert.deepEqual(ids({ until: '2026-11-03T00:00:00.000000Z' }), ['00000001', '00000002']);
    assert.deepEqual(ids({ machine: 'echo', states: [TaskState.created, TaskState.exited], since: '2026-11-01T12:00:00.000000Z' }), [
      '00000004',
    ]);
  });

  it('gives, as JSON made by SQLite, exactly the brief page and cursor of every filter and page size.', () => {
    const filters: Parameters<TaskStore['page']>[1]['filter'][] = [
      undefined,
      { states: [TaskState.running, TaskState.exited] },
      { states: [TaskState.lost] },
      { machine: 'echo' },
      { since: '2026-11-02T00:00:00.000000Z' },
      { until: '2026-11-03T00:00:00.000000Z' },
      { machine: 'echo', states: [TaskState.created, TaskState.exited], since: '2026-11-01T12:00:00.000000Z' },
    ];
    let compared = 0;
    for (const newestFirst of [false, true]) {
      for (const filter of filters) {
        for (let limit = 1; limit <= 5; limit++) {
          let after: number | undefined;
          do {
            const query: Parameters<TaskStore['page']>[1] = {
              limit,
              newestFirst,
              ...(after === undefined ? {} : { after }),
              ...(filter ? { filter } : {}),
            };
            const expected: TaskPage<'brief'> = store.page('brief', query);
            const json = store.briefPageJson(query);
            assert.equal(json.json.toString(), JSON.stringify(expected.tasks), JSON.stringify(query));
            assert.equal(json.next, expected.next, JSON.stringify(query));
            after = expected.next;
            compared++;
          } while (after !== undefined);
        }
      }
    }
    // Pages of each filter (4, 2, 0, 3, 3, 2 and 1 tasks) at sizes 1 to 5: 10 + 6 + 5 + 8 + 8 + 6 + 5, each order.
    assert.equal(compared, 96, 'every page of every filter and size was compared, in both orders');
  });

  it('finds by creation time the tasks a clock set back created out of order.', () => {
    const rows: [string, string][] = [
      ['00000005', '2026-11-20T00:00:00.000000Z'],
      ['00000006', '2026-11-01T12:00:00.000000Z'],
      ['00000007', '2026-11-21T00:00:00.000000Z'],
    ];
    for (const [taskId, createdAt] of rows) store.insert({ taskId, machine: 'echo', unit: `tessia-task-${taskId}.service`, createdAt });
    assert.deepEqual(ids({ since: '2026-11-03T12:00:00.000000Z' }), ['00000004', '00000005', '00000007']);
    assert.deepEqual(ids({ until: '2026-11-02T00:00:00.000000Z' }), ['00000001', '00000006']);
    assert.deepEqual(ids({ since: '2026-11-01T06:00:00.000000Z', until: '2026-11-02T00:00:00.000000Z' }), ['00000006']);
  });

  it('pages a filtered list with the cursor, in creation order.', () => {
    const first = store.page('full', { limit: 2, filter: { machine: 'echo' } });
    assert.deepEqual(
      first.tasks.map((task) => task.taskId),
      ['00000001', '00000003'],
    );
    assert.ok(first.next !== undefined);
    const second = store.page('full', { limit: 2, after: first.next, filter: { machine: 'echo' } });
    assert.deepEqual(
      second.tasks.map((task) => task.taskId),
      ['00000004'],
    );
    assert.equal(second.next, undefined);
  });
});

describe('TaskStore retention', () => {
  function finished(taskId: string, finishedAt: string): void {
    store.insert({ taskId, machine: 'echo', unit: `tessia-task-${taskId}.service`, createdAt: finishedAt });
    store.transition(taskId, { state: TaskState.exited, exitCode: 0, finishedAt }, false);
  }

  it('names finished tasks older than the cutoff, and those beyond the newest N; never active ones.', () => {
    finished('00000001', '2026-10-01T00:00:00.000000Z');
    finished('00000002', '2026-11-01T00:00:00.000000Z');
    finished('00000003', '2026-11-20T00:00:00.000000Z');
    insertTask('00000004');
    const ids = (cutoff: string | null, keep: number | null) =>
      store
        .expired(cutoff, keep, 100)
        .map((task) => task.taskId)
        .sort();
    assert.deepEqual(ids('2026-11-10T00:00:00.000Z', null), ['00000001', '00000002']);
    assert.deepEqual(ids(null, 1), ['00000001', '00000002']);
    assert.deepEqual(ids(null, 0), ['00000001', '00000002', '00000003']);
    assert.deepEqual(ids('2026-09-01T00:00:00.000Z', 5), []);
    assert.deepEqual(ids(null, null), []);
  });

  it('removes pruned tasks with their events in one write.', () => {
    finished('00000001', '2026-10-01T00:00:00.000000Z');
    insertTask('00000002');
    store.removeAll(['00000001']);
    assert.equal(store.find('00000001'), undefined);
    assert.deepEqual(
      store.eventsAfter(0, 10).map((event) => event.taskId),
      ['00000002'],
    );
  });
});

describe('TaskStore schema versions', () => {
  const FIXTURE = join(import.meta.dirname, '../fixtures/store-0.1.0/tasks.sqlite3');
  const copyOf = (file: string) => {
    const dir = join(directory, `copy-${++stores}`);
    mkdirSync(dir);
    copyFileSync(file, join(dir, 'tasks.sqlite3'));
    return dir;
  };

  it("opens 0.1.0's store (a file its own code wrote) and migrates it, keeping every task as it was.", () => {
    const dir = copyOf(FIXTURE);
    const migrated = new TaskStore(dir);
    try {
      assert.equal(migrated.openedAtVersion, 0, '0.1.0 did not record a version');
      assert.equal(new Database(join(dir, 'tasks.sqlite3'), { readonly: true }).pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const exited = migrated.get('0a0a0a01');
      assert.equal(exited?.state, TaskState.exited);
      assert.equal(exited.exitCode, 0);
      assert.equal(exited.finishedAt, '2026-06-01T10:00:05.000000Z');
      assert.equal(exited.usage, null);
      const running = migrated.get('0a0a0a02');
      assert.equal(running?.state, TaskState.running);
      assert.equal(running.stopRequested, true);
      assert.equal(migrated.find('0a0a0a03')?.forgotten, true, 'an unfinished delete stays one');
      // What the new version adds works on the old rows.
      assert.ok(migrated.transition('0a0a0a02', { state: TaskState.exited, exitCode: -1 }, true)?.event);
      assert.deepEqual(
        migrated.page('brief', { limit: 10, filter: { machine: 'echo' } }).tasks.map((task) => task.taskId),
        ['0a0a0a01', '0a0a0a02'],
      );
    } finally {
      migrated.close();
    }
  });

  it("gives a store of version 2 the list's indexes (version 3), and a page of one state or of recent tasks reads them, not every row.", () => {
    for (const [i, state] of [TaskState.exited, TaskState.running, TaskState.exited].entries()) {
      insertTask(`0b0b0b0${i}`);
      store.transition(`0b0b0b0${i}`, { state }, false);
    }
    store.close();
    const file = join(stateDir, 'tasks.sqlite3');
    const older = new Database(file);
    older.exec(`DROP INDEX tasks_state; DROP INDEX tasks_created;
      DROP TRIGGER tasks_inserted_unevented; DROP TRIGGER tasks_moved_unevented; DROP TRIGGER tasks_deleted_unevented;
      DROP TRIGGER events_written_unevented; DROP TABLE unevented`);
    older.pragma('user_version = 2');
    older.close();
    store = new TaskStore(stateDir);
    assert.equal(store.openedAtVersion, 2);
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      // The shapes TaskStore.page builds for these filters.
      const plan = (where: string) =>
        db
          .prepare(
            `EXPLAIN QUERY PLAN SELECT seq, task_id AS taskId, state FROM tasks WHERE forgotten = 0 AND ${where} ORDER BY seq LIMIT 10`,
          )
          .all({ state0: 'running', since: CREATED_AT })
          .map((row) => (row as { detail: string }).detail)
          .join('; ');
      assert.match(plan('state IN (@state0)'), /USING INDEX tasks_state/);
      assert.match(plan('state IN (@state0) AND created_at >= @since'), /USING INDEX tasks_(state|created)/);
    } finally {
      db.close();
    }
    assert.deepEqual(
      store.page('brief', { limit: 10, filter: { states: [TaskState.running] } }).tasks.map((task) => task.taskId),
      ['0b0b0b01'],
    );
  });

  it('leaves a store whose migration fails at the version before, untouched (one transaction each).', () => {
    const dir = copyOf(FIXTURE);
    // Something in the way of migration 2 (a table of the name it creates).
    const db = new Database(join(dir, 'tasks.sqlite3'));
    db.exec('CREATE TABLE events (x INTEGER)');
    db.close();
    assert.throws(() => new TaskStore(dir), /already exists/);
    const after = new Database(join(dir, 'tasks.sqlite3'), { readonly: true });
    try {
      assert.equal(after.pragma('user_version', { simple: true }), 1);
      const columns = (after.pragma('table_info(tasks)') as { name: string }[]).map((column) => column.name);
      assert.ok(!columns.includes('idempotency_key'), 'no half-applied migration');
      assert.equal((after.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n, 3);
    } finally {
      after.close();
    }
  });

  it('loses nothing when the process is SIGKILLed in the middle of a migration, and migrates on the next open.', async () => {
    const dir = copyOf(FIXTURE);
    const file = join(dir, 'tasks.sqlite3');
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../harness/migrate-then-hang.ts'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    let said = '';
    for await (const chunk of child.stdout) {
      said += String(chunk);
      if (said.includes('in-migration')) break;
    }
    assert.equal(said, 'in-migration\n', 'the child stopped inside the migration');
    // The migration's changes exist, uncommitted, in the write-ahead log at this moment.
    assert.ok(statSync(`${file}-wal`).size > 0, 'the migration had written to the log');
    child.kill('SIGKILL');
    assert.deepEqual(await exited, [null, 'SIGKILL']);

    const killed = new Database(file, { readonly: true });
    try {
      assert.equal(killed.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal(killed.pragma('user_version', { simple: true }), 1, 'still at the version before');
      const tables = killed.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").all();
      assert.deepEqual(tables, [], 'nothing of the interrupted migration');
      assert.equal((killed.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n, 3);
    } finally {
      killed.close();
    }
    const reopened = new TaskStore(dir);
    try {
      assert.equal(reopened.openedAtVersion, 1);
      assert.equal(reopened.get('0a0a0a01')?.exitCode, 0);
      assert.equal(reopened.get('0a0a0a02')?.state, TaskState.running);
    } finally {
      reopened.close();
    }
    assert.equal(new Database(file, { readonly: true }).pragma('user_version', { simple: true }), SCHEMA_VERSION);
  });

  /** Opening the store in `dir` fails with StoreVersionError saying `message`, and leaves its file as it was. */
  function assertRefusedUntouched(dir: string, message: RegExp): void {
    const before = readFileSync(join(dir, 'tasks.sqlite3'));
    assert.throws(
      () => new TaskStore(dir),
      (error: Error) => {
        assert.ok(error instanceof StoreVersionError);
        assert.match(error.message, message);
        return true;
      },
    );
    assert.deepEqual(readFileSync(join(dir, 'tasks.sqlite3')), before);
  }

  it('refuses a store of a newer schema, with what to do, and changes nothing in it.', () => {
    const dir = copyOf(FIXTURE);
    const db = new Database(join(dir, 'tasks.sqlite3'));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assertRefusedUntouched(dir, new RegExp(`schema version ${SCHEMA_VERSION + 1}, made by a newer tessia-task-runner`));
  });

  it('refuses a store whose text is not UTF-8 (the default list is sent as its bytes), and changes nothing in it.', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessia-store-utf16-'));
    try {
      const db = new Database(join(dir, 'tasks.sqlite3'));
      db.pragma("encoding = 'UTF-16le'");
      db.exec('CREATE TABLE made (x TEXT)');
      db.close();
      assertRefusedUntouched(dir, /keeps its text in UTF-16le; tessia-task-runner makes and reads UTF-8 stores only/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TaskStore events of changes an older release made without them', () => {
  /** What 0.1.0's store runs (its own statements), on the store file while no TaskStore has it open. */
  const asPreviousRelease = (statements: string) => {
    store.close();
    const db = new Database(join(stateDir, 'tasks.sqlite3'));
    db.exec(statements);
    db.close();
    store = new TaskStore(stateDir);
  };
  const states = () =>
    store.eventsAfter(0, 100).map((event) => [event.taskId, event.state, event.exitCode, event.recovered, event.deleted]);

  it('writes none when every change has its event.', () => {
    insertTask('00000001');
    store.transition('00000001', { state: TaskState.running, startedAt: CREATED_AT }, false);
    store.forget('00000001');
    insertTask('00000002');
    store.forget('00000002');
    store.remove('00000002');
    assert.deepEqual(store.appendMissedEvents(), []);
  });

  it("notes no task after this release's own writes: a start looks at nothing, however many records there are.", () => {
    const noted = () => {
      const db = new Database(join(stateDir, 'tasks.sqlite3'), { readonly: true });
      try {
        return (db.prepare('SELECT task_id FROM unevented ORDER BY task_id').all() as { task_id: string }[]).map((row) => row.task_id);
      } finally {
        db.close();
      }
    };
    store.appendMissedEvents();
    insertTask('00000001');
    store.transition('00000001', { state: TaskState.running, startedAt: CREATED_AT }, false);
    store.transition('00000001', { stopRequested: true }, false);
    insertTask('00000002');
    store.forget('00000002');
    store.unforget('00000002', false);
    store.forget('00000002');
    store.remove('00000002');
    insertTask('00000003');
    store.transition('00000003', { state: TaskState.exited, exitCode: 0, finishedAt: CREATED_AT }, false);
    store.removeAll(['00000003']);
    assert.deepEqual(noted(), []);
    asPreviousRelease(`UPDATE tasks SET state = 'exited', exit_code = 1 WHERE task_id = '00000001';`);
    assert.deepEqual(noted(), ['00000001'], "a release without events leaves its changes noted, by the store's triggers");
    assert.equal(store.appendMissedEvents().length, 1);
    assert.deepEqual(noted(), []);
  });

  it('writes, as recovered, the state of each task created or moved without an event, and the delete of each row removed or forgotten without one.', () => {
    insertTask('00000001');
    store.transition('00000001', { state: TaskState.running, startedAt: CREATED_AT }, false);
    insertTask('00000002');
    insertTask('00000003');
    insertTask('00000004');
    const before = store.lastEventId();
    asPreviousRelease(`
      UPDATE tasks SET state = 'exited', exit_code = 3, result = 'exit-code', finished_at = '2026-11-28T00:00:03.000000Z' WHERE task_id = '00000001';
      INSERT INTO tasks (task_id, machine, unit, state, created_at) VALUES ('00000005', 'echo', 'tessia-task-00000005.service', 'created', '2026-11-28T00:00:05.000Z');
      UPDATE tasks SET forgotten = 1 WHERE task_id = '00000002';
      DELETE FROM tasks WHERE task_id = '00000003';
    `);
    const written = store.appendMissedEvents();
    assert.deepEqual(
      written.map((event) => [event.taskId, event.state, event.exitCode, event.recovered, event.deleted]),
      [
        ['00000001', TaskState.exited, 3, true, false],
        ['00000005', TaskState.created, null, true, false],
        ['00000002', TaskState.created, null, true, true],
        ['00000003', TaskState.created, null, true, true],
      ],
    );
    assert.ok(written.every((event) => event.id > before));
    assert.equal(written[0]?.at, '2026-11-28T00:00:03.000000Z', "an end's event is dated by the end");
    assert.deepEqual(store.appendMissedEvents(), [], 'once');
    assert.equal(states().filter(([taskId]) => taskId === '00000004').length, 1, 'a task nothing happened to: its one event');
  });

  it("gives each task of 0.1.0's store (which kept no events) one event of its state, once.", () => {
    store.close();
    copyFileSync(join(import.meta.dirname, '../fixtures/store-0.1.0/tasks.sqlite3'), join(stateDir, 'tasks.sqlite3'));
    store = new TaskStore(stateDir);
    assert.deepEqual(
      store.appendMissedEvents().map((event) => [event.taskId, event.state, event.deleted]),
      [
        ['0a0a0a01', TaskState.exited, false],
        ['0a0a0a02', TaskState.running, false],
      ],
      'the visible ones; the forgotten one never had an event to follow',
    );
    assert.deepEqual(store.appendMissedEvents(), []);
  });
});
