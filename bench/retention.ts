/**
 * Pruning 100 000 finished task records with retention (batches of one write each, their events
 * with them, and each task's working directory — a file in it — removed as the runner removes them
 * when root, in this process), against the bare work: one DELETE of the same rows in SQLite and an
 * `rm -r` of the same directories. A store and directories of their own, in a temporary directory:
 * no systemd needed. (Through the files service, each removal is one more round trip on its socket.)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { TaskDirectories } from '../src/files/task-directories.js';
import { TaskState } from '../src/tasks/model.js';
import { Retention } from '../src/tasks/retention.js';
import { TaskStore } from '../src/tasks/store.js';
import { round } from './stats.js';

const taskIdOf = (index: number) => index.toString(16).padStart(8, '0');

/** Each task's working directory, with a file in it. */
function directories(root: string, records: number): void {
  for (let i = 0; i < records; i++) {
    mkdirSync(join(root, taskIdOf(i)));
    writeFileSync(join(root, taskIdOf(i), 'result.txt'), 'done\n');
  }
}

/**
 * A store of `records` finished tasks (each with its three events), written in one transaction:
 * the fill is the set-up, not what is measured (one durable write each would take minutes).
 */
function fill(directory: string, records: number): TaskStore {
  new TaskStore(directory).close();
  const db = new Database(join(directory, 'tasks.sqlite3'));
  const finishedAt = '2026-01-01T00:00:00.000000Z';
  const task = db.prepare(
    `INSERT INTO tasks (task_id, machine, unit, state, exit_code, result, created_at, started_at, finished_at)
     VALUES (?, 'echo', ?, 'exited', 0, 'success', ?, ?, ?)`,
  );
  const event = db.prepare("INSERT INTO events (task_id, machine, state, at) VALUES (?, 'echo', ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < records; i++) {
      const taskId = taskIdOf(i);
      task.run(taskId, `tessia-task-${taskId}.service`, finishedAt, finishedAt, finishedAt);
      for (const state of [TaskState.created, TaskState.running, TaskState.exited]) event.run(taskId, state, finishedAt);
    }
  })();
  db.close();
  return new TaskStore(directory);
}

export async function benchRetention(say: (line: string) => void, records = 100_000) {
  const root = mkdtempSync(join(tmpdir(), 'tessia-bench-retention-'));
  try {
    const store = fill(join(root, 'runner'), records);
    const workdirs = join(root, 'runner-dirs');
    mkdirSync(workdirs);
    directories(workdirs, records);
    const reader = new TaskDirectories([workdirs]);
    const retention = new Retention(
      store,
      async (taskId) => {
        await reader.remove(taskId);
      },
      { maxAgeDays: 30, maxFinished: null, sweepMinutes: 60 },
      pino({ level: 'warn' }),
    );
    const began = performance.now();
    const pruned = await retention.sweep(new Date('2026-06-01T00:00:00Z'));
    const seconds = (performance.now() - began) / 1000;
    await retention.close();
    store.close();

    const bareStore = fill(join(root, 'bare'), records);
    bareStore.close();
    const bareDirs = join(root, 'bare-dirs');
    mkdirSync(bareDirs);
    directories(bareDirs, records);
    const db = new Database(join(root, 'bare', 'tasks.sqlite3'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const bareBegan = performance.now();
    db.transaction(() => {
      db.prepare("DELETE FROM events WHERE task_id IN (SELECT task_id FROM tasks WHERE finished_at < '2026-05-02')").run();
      db.prepare("DELETE FROM tasks WHERE finished_at < '2026-05-02'").run();
    })();
    rmSync(bareDirs, { recursive: true });
    const bareSeconds = (performance.now() - bareBegan) / 1000;
    db.close();
    const result = {
      records,
      pruned,
      seconds: round(seconds, 2),
      bareDeleteAndRmSeconds: round(bareSeconds, 2),
      ratio: round(seconds / bareSeconds, 2),
    };
    say(`retention: ${JSON.stringify(result)}`);
    return result;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
