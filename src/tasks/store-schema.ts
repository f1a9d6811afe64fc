/**
 * The store's schema, one version after another. The database records the version it is at
 * (SQLite's user_version); opening it applies the migrations it lacks, each in one transaction with
 * its version number, so a crash during one leaves the store at the version before. A store of a
 * newer version than this code knows is refused, never touched.
 */
import type Database from 'better-sqlite3';
import { ACTIVE_STATES, TASK_STATES } from './model.js';

const sqlList = (values: readonly string[]) => values.map((value) => `'${value}'`).join(', ');
export const ACTIVE_SQL = sqlList(ACTIVE_STATES);

/** Version n is reached by MIGRATIONS[n - 1]. Never edit one that was released: add the next. */
const MIGRATIONS: readonly string[] = [
  // 1 (0.1.0): the tasks.
  `
  CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL UNIQUE,
    machine TEXT NOT NULL,
    unit TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN (${sqlList(TASK_STATES)})),
    exit_code INTEGER,
    result TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    invocation_id TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    -- DELETE asked for it: hidden at once; the row goes once its unit is stopped and collected.
    forgotten INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS tasks_active ON tasks (state) WHERE state IN (${ACTIVE_SQL});
  `,
  // 2: task events, idempotency keys, usage.
  `
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    machine TEXT NOT NULL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    result TEXT,
    detail TEXT,
    at TEXT NOT NULL,
    -- Found by recovery or after a lost bus: it happened while the runner was not watching.
    recovered INTEGER NOT NULL DEFAULT 0,
    -- A DELETE: the task is gone from the API from this event on.
    deleted INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX events_task ON events (task_id);
  ALTER TABLE tasks ADD COLUMN idempotency_key TEXT;
  ALTER TABLE tasks ADD COLUMN request_digest TEXT;
  CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
  ALTER TABLE tasks ADD COLUMN usage TEXT;
  CREATE INDEX tasks_machine ON tasks (machine, seq);
  CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
  `,
  // 3: the list's filters by state and by creation time, each an index (a page of a rare state of
  // 100 000 records read every row: docs/benchmarks.md). In seq order within a state, so a page of
  // one state is read in order and stops at its limit.
  `
  CREATE INDEX tasks_state ON tasks (state, seq) WHERE forgotten = 0;
  CREATE INDEX tasks_created ON tasks (created_at) WHERE forgotten = 0;
  `,
  // 4: the tasks whose rows changed without an event, kept by triggers — SQLite runs them for any
  // release that writes the store, 0.1.0 too, which keeps no events. Each write of this one adds
  // the event in the same transaction (whose trigger clears the note) or clears it itself, so the
  // check for missed events at start (appendMissedEvents) looks at these tasks only, not at every
  // record (3.5 s at 100 000: docs/benchmarks.md). Every task is noted once here: the first start
  // after this migration checks them all, as every start did before.
  `
  CREATE TABLE unevented (task_id TEXT PRIMARY KEY) WITHOUT ROWID;
  INSERT OR IGNORE INTO unevented SELECT task_id FROM tasks;
  INSERT OR IGNORE INTO unevented SELECT DISTINCT task_id FROM events;
  CREATE TRIGGER tasks_inserted_unevented AFTER INSERT ON tasks
    BEGIN INSERT OR IGNORE INTO unevented VALUES (NEW.task_id); END;
  CREATE TRIGGER tasks_moved_unevented AFTER UPDATE OF state, forgotten ON tasks
    WHEN OLD.state IS NOT NEW.state OR OLD.forgotten IS NOT NEW.forgotten
    BEGIN INSERT OR IGNORE INTO unevented VALUES (NEW.task_id); END;
  CREATE TRIGGER tasks_deleted_unevented AFTER DELETE ON tasks
    BEGIN INSERT OR IGNORE INTO unevented VALUES (OLD.task_id); END;
  CREATE TRIGGER events_written_unevented AFTER INSERT ON events
    BEGIN DELETE FROM unevented WHERE task_id = NEW.task_id; END;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class StoreVersionError extends Error {}

/** Refuses a store of a newer schema before anything (even the journal mode) is written to it. */
export function refuseNewer(db: Database.Database, file: string): void {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new StoreVersionError(
      `the task store ${file} is at schema version ${found}, made by a newer tessia-task-runner; this one knows versions up to ${SCHEMA_VERSION}. ` +
        'Install the newer release again (nothing was changed), or move the store aside to start empty.',
    );
  }
}

/**
 * Refuses a store whose text is not UTF-8 (SQLite's default, and what the runner makes): the
 * default list's JSON is sent as the bytes SQLite has (TaskStore.briefPageJson).
 */
export function refuseOtherEncoding(db: Database.Database, file: string): void {
  const encoding = db.pragma('encoding', { simple: true }) as string;
  if (encoding !== 'UTF-8') {
    throw new StoreVersionError(
      `the task store ${file} keeps its text in ${encoding}; tessia-task-runner makes and reads UTF-8 stores only. ` +
        'Move the store aside to start empty, or copy it into a new one (sqlite3 OLD .dump | sqlite3 NEW: a new file is UTF-8).',
    );
  }
}

/** Brings the database to SCHEMA_VERSION; returns the version it was at (0: a new store). */
export function migrate(db: Database.Database, file: string): number {
  refuseNewer(db, file);
  const found = db.pragma('user_version', { simple: true }) as number;
  // 0.1.0 did not record its version: a tasks table without one is version 1.
  const hasTasks = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").get() !== undefined;
  let version = found;
  if (found === 0 && hasTasks) {
    version = 1;
    db.pragma('user_version = 1');
  }
  for (; version < SCHEMA_VERSION; version += 1) {
    const next = version + 1;
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${next}`);
    }).immediate();
  }
  return found;
}
