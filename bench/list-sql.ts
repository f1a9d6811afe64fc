/**
 * `node --import tsx bench/list-sql.ts [STATE_DIR] [COUNT]`: a diagnostic, not in `npm run bench`.
 * The default `GET /v1/tasks` page (10 000 tasks, brief) as SQLite makes it: the page's query with
 * or without an ORDER BY in the aggregate (before the eleventh session of round two: with), its
 * JSON as a string or as bytes (before: a string), and the store's own (TaskStore.briefPageJson:
 * no ORDER BY in the aggregate, bytes, and its query for a next page). Each way runs in a process
 * of its own (a string's garbage would land in the next way's time), 200 times; p50 and p95 in ms.
 * The store (STATE_DIR, default .state/list-sql in the checkout) is made with the store's code the
 * first time (COUNT finished tasks, default 100 000; minutes: each write is synced).
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_DIR } from '../src/embedded/private-systemd.js';
import { TaskStore } from '../src/tasks/store.js';
import { writeFinishedTasks } from './records.js';
import { percentile, round } from './stats.js';

const LIMIT = 10_000;
const RUNS = 200;
const WAYS = ['the store', 'ORDER BY, a string (before)', 'ORDER BY, bytes', 'no ORDER BY, a string', 'no ORDER BY, bytes'] as const;
type Way = (typeof WAYS)[number];

/** The page's one query, as the store wrote it before (`ORDER BY`, a string) and in the other three ways. */
function pageQuery(db: Database.Database, way: Exclude<Way, 'the store'>): () => number {
  const aggregate = `json_group_array(json_object('taskId', task_id, 'state', state)${way.startsWith('ORDER BY') ? ' ORDER BY seq' : ''})`;
  const statement = db.prepare(
    `SELECT ${way.endsWith('bytes') ? `CAST(${aggregate} AS BLOB)` : aggregate} AS json, COUNT(*) AS count, MAX(seq) AS last
     FROM (SELECT seq, task_id, state FROM tasks WHERE forgotten = 0 ORDER BY seq LIMIT @limit)`,
  );
  return () => (statement.get({ limit: LIMIT }) as { json: string | Buffer }).json.length;
}

function timeOne(stateDir: string, way: Way): { p50Ms: number; p95Ms: number } {
  const store = new TaskStore(stateDir);
  const db = new Database(join(stateDir, 'tasks.sqlite3'), { readonly: true });
  const run =
    way === 'the store' ? () => store.briefPageJson({ limit: LIMIT, filter: {}, newestFirst: false }).json.length : pageQuery(db, way);
  const times: number[] = [];
  for (let turn = 0; turn < RUNS; turn++) {
    const began = performance.now();
    if (run() < 2) throw new Error(`${way}: an empty page`);
    times.push(performance.now() - began);
  }
  store.close();
  db.close();
  return { p50Ms: round(percentile(times, 50), 2), p95Ms: round(percentile(times, 95), 2) };
}

const [stateDir = join(REPO_DIR, '.state', 'list-sql'), second] = process.argv.slice(2);
const asked = WAYS.find((way) => way === second);
if (asked) process.stdout.write(JSON.stringify(timeOne(stateDir, asked)));
else {
  const count = Number(second ?? 100_000);
  if (!existsSync(join(stateDir, 'tasks.sqlite3'))) {
    process.stderr.write(`writing ${count} finished tasks into ${stateDir}…\n`);
    process.stderr.write(`${JSON.stringify(writeFinishedTasks(stateDir, count, ['bench-true', 'bench-hold']))}\n`);
  }
  const results: Record<string, unknown> = {};
  for (const way of WAYS) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), stateDir, way], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`${way}: ${child.stderr}`);
    results[way] = JSON.parse(child.stdout) as unknown;
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}
