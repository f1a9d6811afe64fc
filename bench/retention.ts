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

function fill(directory: string, records: number): TaskStore {
  const store = new TaskStore(directory);
  const finishedAt = '2026-01-01T00:00:00.000000Z';
  for (let i = 0; i < records; i++) {
    const taskId = taskIdOf(i);
    store.insert({ taskId, machine: 'echo', unit: `tessia-task-${taskId}.service`, createdAt: finishedAt });
    store.transition(taskId, { state: TaskState.running }, false);
    store.transition(taskId, { state: TaskState.exited, exitCode: 0, result: 'success', finishedAt }, false);
  }
  return store;
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
