/**
 * `node --import tsx bench/list-sql.ts [STATE_DIR] [COUNT]`: a diagnostic, not in `npm run bench`.
 * The default `GET /v1/tasks` page (10 000 tasks, brief) as SQLite makes it, timed in this process:
 * the store's query (TaskStore.briefPageJson) against the same page with an ORDER BY in the
 * aggregate, as a string, as before the eleventh session of round two. The store is made with the
 * store's code the first time (COUNT finished tasks, default 100 000; minutes: each write is synced).
 * Prints p50 and p95 of each, in ms, over rounds that alternate them.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TaskStore } from '../src/tasks/store.js';
import { writeFinishedTasks } from './records.js';
import { percentile, round } from './stats.js';

const stateDir = process.argv[2] ?? '/tmp/tessia-list-sql';
const count = Number(process.argv[3] ?? 100_000);
if (!existsSync(join(stateDir, 'tasks.sqlite3'))) {
  process.stderr.write(`writing ${count} finished tasks into ${stateDir}…\n`);
  process.stderr.write(`${JSON.stringify(writeFinishedTasks(stateDir, count, ['bench-true', 'bench-hold']))}\n`);
}
const store = new TaskStore(stateDir);
const db = new Database(join(stateDir, 'tasks.sqlite3'), { readonly: true });
const LIMIT = 10_000;
const sortedAgain = db.prepare(
  `SELECT json_group_array(json_object('taskId', task_id, 'state', state) ORDER BY seq) AS json, COUNT(*) AS count, MAX(seq) AS last
   FROM (SELECT seq, task_id, state FROM tasks WHERE forgotten = 0 ORDER BY seq LIMIT ${LIMIT})`,
);
const ways: Record<string, () => number> = {
  'the store (bytes, the subquery order)': () => store.briefPageJson({ limit: LIMIT, filter: {}, newestFirst: false }).json.length,
  'ORDER BY in the aggregate, as a string': () => (sortedAgain.get() as { json: string }).json.length,
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((name) => [name, []]));
for (let turn = 0; turn < 100; turn++) {
  for (const [name, way] of Object.entries(ways)) {
    const began = performance.now();
    if (way() < 2) throw new Error(`${name}: an empty page`);
    times[name]?.push(performance.now() - began);
  }
}
const result = Object.fromEntries(
  Object.entries(times).map(([name, ms]) => [name, { p50Ms: round(percentile(ms, 50), 2), p95Ms: round(percentile(ms, 95), 2) }]),
);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
store.close();
db.close();
