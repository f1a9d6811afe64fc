import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { TaskState, type TaskRecord } from '../../src/tasks/model.js';
import { TaskStore } from '../../src/tasks/store.js';

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

  it('loses no task when the last task of a page is deleted before the next page is read.', () => {
    for (const taskId of ['aaaaaaaa', 'bbbbbbbb', 'cccccccc']) insertTask(taskId);
    const first = store.page('brief', { limit: 2 });
    store.remove('bbbbbbbb');
    assert.ok(first.next !== undefined);
    assert.deepEqual(ids(store.page('brief', { limit: 2, after: first.next }).tasks), ['cccccccc']);
  });
});
