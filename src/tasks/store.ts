/**
 * The task history: one row per task, and the events of their state changes, in SQLite (WAL,
 * synchronous=FULL so a row is on disk before the client hears of it). The only file that imports
 * the database driver; the schema and its versions are store-schema.ts. Every write is one
 * transaction: one its file system refuses (full, failing, read-only) leaves nothing of itself and
 * throws StoreUnwritableError (store-errors.ts); the observer hears of every write's outcome.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FINISHED_STATES, TaskState, isFinished, type TaskEvent, type TaskRecord, type TaskUsage } from './model.js';
import { ACTIVE_SQL, migrate, refuseNewer, refuseOtherEncoding } from './store-schema.js';
import { asStoreUnwritable } from './store-errors.js';
import type { StoreWriteObserver } from './store-health.js';
import { nowIso } from './time.js';

interface TaskRow {
  task_id: string;
  machine: string;
  unit: string;
  state: string;
  exit_code: number | null;
  result: string | null;
  detail: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  invocation_id: string | null;
  stop_requested: number;
  forgotten: number;
  usage: string | null;
}

interface EventRow {
  id: number;
  task_id: string;
  machine: string;
  state: TaskState;
  exit_code: number | null;
  result: string | null;
  detail: string | null;
  at: string;
  recovered: number;
  deleted: number;
}

const ACTIVE = ACTIVE_SQL;
const FINISHED = FINISHED_STATES.map((state) => `'${state}'`).join(', ');

export type TaskPatch = Partial<
  Pick<TaskRecord, 'state' | 'exitCode' | 'result' | 'detail' | 'startedAt' | 'finishedAt' | 'invocationId' | 'stopRequested' | 'usage'>
>;

const COLUMNS: Record<keyof TaskPatch, string> = {
  state: 'state',
  exitCode: 'exit_code',
  result: 'result',
  detail: 'detail',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  invocationId: 'invocation_id',
  stopRequested: 'stop_requested',
  usage: 'usage',
};

/** The client's key for a POST it may retry, and a digest of what it asked for. */
export interface IdempotencyKey {
  key: string;
  digest: string;
}

/** Which tasks a page holds; every filter is one more condition of the same query. */
export interface TaskFilter {
  states?: readonly TaskState[];
  machine?: string;
  /** Created at or after (ISO 8601, UTC). */
  since?: string;
  /** Created before. */
  until?: string;
}

export interface EventFilter {
  taskId?: string;
  machine?: string;
}

export class TaskStore {
  private readonly db: Database.Database;
  private readonly statements;
  /** One prepared UPDATE per set of columns, made on first use. */
  private readonly updates = new Map<string, Database.Statement>();
  /** One prepared query per shape (view, filters), made on first use. */
  private readonly queries = new Map<string, Database.Statement>();
  /** The schema version the store had when opened (0: new). */
  readonly openedAtVersion: number;
  /**
   * Active tasks' records as last read or written, by id: a start or a stop reads its task about
   * ten times (the route, each signal's move, the end, the collection), each a query and a new
   * object. Bounded by the active tasks; this object is the only writer of the rows, and each write
   * drops the records it touches (the tables' triggers write no task rows). Frozen: shared.
   */
  private readonly activeRecords = new Map<string, Readonly<{ task: TaskRecord; forgotten: boolean }>>();

  constructor(
    private readonly stateDir: string,
    /** Told whether each write succeeded or the file system refused it (StoreHealth). */
    private readonly observer?: StoreWriteObserver,
  ) {
    const file = join(stateDir, 'tasks.sqlite3');
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o750 });
      this.db = new Database(file);
    } catch (error) {
      throw asStoreUnwritable(error, stateDir) ?? error;
    }
    try {
      refuseNewer(this.db, file);
      refuseOtherEncoding(this.db, file);
      // On a full disk this is where opening fails: WAL mode needs room for its shared-memory file.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      this.openedAtVersion = migrate(this.db, file);
    } catch (error) {
      this.db.close();
      throw asStoreUnwritable(error, stateDir) ?? error;
    }
    this.statements = {
      insert: this.db.prepare(
        `INSERT INTO tasks (task_id, machine, unit, state, created_at, idempotency_key, request_digest)
         VALUES (@taskId, @machine, @unit, @state, @createdAt, @key, @digest)`,
      ),
      releaseKey: this.db.prepare('UPDATE tasks SET idempotency_key = NULL WHERE idempotency_key = ? AND forgotten = 1'),
      byKey: this.db.prepare<[string], TaskRow & { request_digest: string | null }>(
        'SELECT * FROM tasks WHERE idempotency_key = ? AND forgotten = 0',
      ),
      get: this.db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE task_id = ?'),
      list: this.db.prepare<[], TaskRow>('SELECT * FROM tasks WHERE forgotten = 0 ORDER BY seq'),
      briefList: this.db.prepare<[], TaskBrief>('SELECT task_id AS taskId, state FROM tasks WHERE forgotten = 0 ORDER BY seq'),
      active: this.db.prepare<[], TaskRow>(`SELECT * FROM tasks WHERE state IN (${ACTIVE}) ORDER BY seq`),
      countActive: this.db.prepare<[], { count: number }>(`SELECT COUNT(*) AS count FROM tasks WHERE state IN (${ACTIVE})`),
      countActiveOf: this.db.prepare<[string], { count: number }>(
        `SELECT COUNT(*) AS count FROM tasks WHERE state IN (${ACTIVE}) AND machine = ?`,
      ),
      byState: this.db.prepare<[], { state: string; count: number }>(
        'SELECT state, COUNT(*) AS count FROM tasks WHERE forgotten = 0 GROUP BY state',
      ),
      forgotten: this.db.prepare<[], TaskRow>('SELECT * FROM tasks WHERE forgotten = 1 ORDER BY seq'),
      forget: this.db.prepare(
        `UPDATE tasks SET forgotten = 1, stop_requested = CASE WHEN state IN (${ACTIVE}) THEN 1 ELSE stop_requested END WHERE task_id = ?`,
      ),
      unforget: this.db.prepare('UPDATE tasks SET forgotten = 0, stop_requested = @stopRequested WHERE task_id = @taskId'),
      remove: this.db.prepare('DELETE FROM tasks WHERE task_id = ?'),
      // This release's own removals: their events are written (or pruned with them) already.
      unnote: this.db.prepare('DELETE FROM unevented WHERE task_id = ?'),
      unnoteAll: this.db.prepare('DELETE FROM unevented'),
      removeEvents: this.db.prepare('DELETE FROM events WHERE task_id = ?'),
      appendEvent: this.db.prepare<[Omit<EventRow, 'id'>], EventRow>(
        `INSERT INTO events (task_id, machine, state, exit_code, result, detail, at, recovered, deleted)
         VALUES (@task_id, @machine, @state, @exit_code, @result, @detail, @at, @recovered, @deleted) RETURNING *`,
      ),
      orphanEvents: this.db.prepare<[string]>('DELETE FROM events WHERE at < ? AND task_id NOT IN (SELECT task_id FROM tasks)'),
      lastEventId: this.db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM events'),
      // Visible tasks whose state is not the one their last event says (or that have none).
      // Only among the tasks the triggers noted (store-schema.ts, version 4).
      stateWithoutEvent: this.db.prepare<[], TaskRow>(
        `SELECT * FROM tasks AS t WHERE task_id IN (SELECT task_id FROM unevented) AND forgotten = 0 AND state IS NOT
           (SELECT state FROM events WHERE task_id = t.task_id ORDER BY id DESC LIMIT 1) ORDER BY seq`,
      ),
      // Tasks with events but no `deleted` one whose row is gone or forgotten: the last event of each.
      deleteWithoutEvent: this.db.prepare<[], EventRow>(
        `SELECT e.* FROM events AS e JOIN
           (SELECT MAX(id) AS id FROM events WHERE task_id IN (SELECT task_id FROM unevented)
              GROUP BY task_id HAVING MAX(deleted) = 0) AS last ON e.id = last.id
         WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE task_id = e.task_id AND forgotten = 0) ORDER BY e.id`,
      ),
      expiredByAge: this.db.prepare<[string, number], TaskRow>(
        `SELECT * FROM tasks WHERE finished_at IS NOT NULL AND finished_at < ? AND state IN (${FINISHED}) ORDER BY finished_at LIMIT ?`,
      ),
      expiredByCount: this.db.prepare<[number, number], TaskRow>(
        `SELECT * FROM tasks WHERE state IN (${FINISHED}) AND forgotten = 0 ORDER BY seq DESC LIMIT ? OFFSET ?`,
      ),
    };
  }

  /**
   * A new task, and its "created" event, in one write. With a key, the key is the task's from now
   * on (one a deleted task held is released first). Returns the event.
   */
  insert(task: Pick<TaskRecord, 'taskId' | 'machine' | 'unit' | 'createdAt'>, idempotency?: IdempotencyKey, recovered = false): TaskEvent {
    return this.write([task.taskId], () =>
      this.db
        .transaction(() => {
          if (idempotency) this.statements.releaseKey.run(idempotency.key);
          this.statements.insert.run({
            ...task,
            state: TaskState.created,
            key: idempotency?.key ?? null,
            digest: idempotency?.digest ?? null,
          });
          return this.appendEvent(
            { task_id: task.taskId, machine: task.machine, state: TaskState.created, exit_code: null, result: null, detail: null },
            task.createdAt,
            recovered,
          );
        })
        .immediate(),
    );
  }

  /** The visible task that holds an idempotency key, and the digest of the request that made it. */
  findByKey(key: string): { task: TaskRecord; digest: string | null } | undefined {
    const row = this.statements.byKey.get(key);
    return row && { task: fromRow(row), digest: row.request_digest };
  }

  /** Any row, forgotten ones included. */
  find(taskId: string): Readonly<{ task: TaskRecord; forgotten: boolean }> | undefined {
    const cached = this.activeRecords.get(taskId);
    if (cached) return cached;
    const row = this.statements.get.get(taskId);
    return row && this.remember(fromRow(row), row.forgotten === 1);
  }

  private remember(task: TaskRecord, forgotten: boolean): Readonly<{ task: TaskRecord; forgotten: boolean }> {
    if (task.usage) Object.freeze(task.usage);
    const found = Object.freeze({ task: Object.freeze(task), forgotten });
    if (!isFinished(task)) this.activeRecords.set(task.taskId, found);
    return found;
  }

  /** A task the API can see. */
  get(taskId: string): TaskRecord | undefined {
    const found = this.find(taskId);
    return found && !found.forgotten ? found.task : undefined;
  }

  list(): TaskRecord[] {
    return this.statements.list.all().map(fromRow);
  }

  /** Ids and states only: the default list, 12× faster than list() with 10 000 tasks. */
  listBrief(): TaskBrief[] {
    return this.statements.briefList.all();
  }

  /**
   * One page of the tasks the API can see that pass `filter`, in creation order: those after
   * `after` (the cursor of the last task of the page before), at most `limit`; `next` is this
   * page's cursor when more follow. The cursor is the row's sequence number, so deleting tasks
   * between two pages skips nothing.
   */
  page<View extends TaskView>(view: View, query: PageQuery): TaskPage<View> {
    const where = pageWhere(query, { limit: query.limit + 1 });
    const columns = view === 'brief' ? 'seq, task_id AS taskId, state' : '*';
    const rows = this.query(`SELECT ${columns} FROM tasks WHERE ${where.sql()} ORDER BY ${orderOf(query)} LIMIT @limit`).all(
      where.values,
    ) as (TaskRow & TaskBrief & { seq: number })[];
    const more = rows.length > query.limit;
    const kept = more ? rows.slice(0, query.limit) : rows;
    const tasks = kept.map((row) => (view === 'brief' ? { taskId: row.taskId, state: row.state } : fromRow(row)));
    const last = kept.at(-1);
    return { tasks: tasks as TaskPage<View>['tasks'], ...(more && last ? { next: last.seq } : {}) };
  }

  /**
   * page('brief', query) as the JSON text of its tasks, made by SQLite: the default list is 10 000
   * of them, which as rows, objects and JSON.stringify cost the runner three times the CPU. As
   * bytes (the store's are UTF-8: refuseOtherEncoding), ready for the socket: a string of them would
   * be one more copy, on V8's heap. The aggregate takes the rows in the order the page's subquery
   * yields them (SQLite runs it as a co-routine); an ORDER BY of its own would sort them again. The
   * store's test of this page against page() fails if that order is ever not kept.
   */
  briefPageJson(query: PageQuery): { json: Buffer; next?: number } {
    const where = pageWhere(query, { limit: query.limit });
    const page = this.query(
      `SELECT CAST(json_group_array(json_object('taskId', task_id, 'state', state)) AS BLOB) AS json, COUNT(*) AS count,
         ${query.newestFirst ? 'MIN' : 'MAX'}(seq) AS last
       FROM (SELECT seq, task_id, state FROM tasks WHERE ${where.sql()} ORDER BY ${orderOf(query)} LIMIT @limit)`,
    ).get(where.values) as { json: Buffer; count: number; last: number | null };
    if (page.count < query.limit || page.last === null) return { json: page.json };
    const after = pageWhere({ ...query, after: page.last }, {});
    const more = this.query(`SELECT EXISTS (SELECT 1 FROM tasks WHERE ${after.sql()}) AS more`).get(after.values) as { more: number };
    return { json: page.json, ...(more.more === 1 ? { next: page.last } : {}) };
  }

  listActive(): TaskRecord[] {
    return this.statements.active.all().map(fromRow);
  }

  countByState(): Record<string, number> {
    return Object.fromEntries(this.statements.byState.all().map((row) => [row.state, row.count]));
  }

  /**
   * One write that changes nothing (the schema version, written again): what StoreHealth probes
   * with while writes fail. Throws StoreUnwritableError while they still do.
   */
  probeWrite(): void {
    this.write([], () => {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      this.db.pragma(`user_version = ${version}`);
    });
  }

  /** The store can be locked for a write (for readiness): an immediate transaction, rolled back. */
  writable(): boolean {
    try {
      this.db.exec('BEGIN IMMEDIATE; ROLLBACK');
      return true;
    } catch {
      return false;
    }
  }

  countActive(): number {
    return this.statements.countActive.get()?.count ?? 0;
  }

  /** Active tasks of one machine (forgotten ones included: their units still run). */
  countActiveOf(machine: string): number {
    return this.statements.countActiveOf.get(machine)?.count ?? 0;
  }

  update(taskId: string, patch: TaskPatch): void {
    this.write([taskId], () => this.applyPatch(taskId, patch));
  }

  private applyPatch(taskId: string, patch: TaskPatch): void {
    const entries = Object.entries(patch) as [keyof TaskPatch, unknown][];
    if (entries.length === 0) return;
    const assignments = entries.map(([key]) => `${COLUMNS[key]} = @${key}`).join(', ');
    let statement = this.updates.get(assignments);
    if (!statement) {
      statement = this.db.prepare(`UPDATE tasks SET ${assignments} WHERE task_id = @taskId`);
      this.updates.set(assignments, statement);
    }
    const values = Object.fromEntries(entries.map(([key, value]) => [key, columnValue(value)]));
    statement.run({ ...values, taskId });
  }

  /**
   * Applies a patch and, when it changes the task's state, appends the event that says so, in one
   * write: an event is recorded exactly when the change is. Returns the task as it now is.
   */
  transition(taskId: string, patch: TaskPatch, recovered: boolean): { task: TaskRecord; event?: TaskEvent } | undefined {
    let written: TaskRow | undefined;
    const result = this.write([taskId], () =>
      this.db
        .transaction(() => {
          const before = this.statements.get.get(taskId);
          if (!before) return undefined;
          this.applyPatch(taskId, patch);
          const after = this.statements.get.get(taskId);
          if (!after) return undefined;
          written = after;
          const task = fromRow(after);
          if (after.state === before.state) return { task };
          const event = this.appendEvent(
            eventRowOf(task),
            (task.state === TaskState.running ? task.startedAt : task.finishedAt) ?? nowIso(),
            recovered,
          );
          return { task, event };
        })
        .immediate(),
    );
    // Committed: the record as written is the one read next.
    if (result && written) return { ...result, task: this.remember(result.task, written.forgotten === 1).task };
    return result;
  }

  /**
   * Writes the events of changes that were made without one, and returns them: a release that kept
   * no events (0.1.0, which an admin may have installed again over this one, then this one again)
   * created, moved and deleted tasks in this store. A visible task whose state is not its last
   * event's gets an event of its state now; a task with events whose row that release removed (or
   * left forgotten) gets its `deleted` event. All `recovered`: not seen as they happened. In one write.
   */
  appendMissedEvents(): TaskEvent[] {
    return this.db
      .transaction(() => {
        const events = this.statements.stateWithoutEvent.all().map((row) => {
          const task = fromRow(row);
          const at = isFinished(task) ? task.finishedAt : task.state === TaskState.created ? task.createdAt : task.startedAt;
          return this.appendEvent(eventRowOf(task), at ?? nowIso(), true);
        });
        for (const last of this.statements.deleteWithoutEvent.all()) {
          const row = this.statements.get.get(last.task_id);
          const { id: _id, at: _at, recovered: _recovered, deleted: _deleted, ...was } = last;
          events.push(this.appendEvent(row ? eventRowOf(fromRow(row)) : was, nowIso(), true, true));
        }
        this.statements.unnoteAll.run();
        return events;
      })
      .immediate();
  }

  /** Events after `after` (an event id; 0 for all that are kept), oldest first, at most `limit`. */
  eventsAfter(after: number, limit: number, filter: EventFilter = {}): TaskEvent[] {
    const where = new Where('id > @after', { after, limit });
    where.when(filter.taskId, 'taskId', 'task_id = @taskId');
    where.when(filter.machine, 'machine', 'machine = @machine');
    const sql = `SELECT * FROM events WHERE ${where.sql()} ORDER BY id LIMIT @limit`;
    return (this.query(sql).all(where.values) as EventRow[]).map(eventFromRow);
  }

  /** The id of the newest event; 0 when there is none. */
  lastEventId(): number {
    return this.statements.lastEventId.get()?.id ?? 0;
  }

  /**
   * DELETE's intent, durable before anything is done about it, in one write: the task is hidden
   * from now on and, if still active, its end counts as a stop on request (-1). The row itself goes
   * once the unit is stopped and collected (remove()).
   */
  forget(taskId: string): TaskEvent | undefined {
    return this.write([taskId], () =>
      this.db
        .transaction(() => {
          this.statements.forget.run(taskId);
          return this.eventOfNow(taskId, true);
        })
        .immediate(),
    );
  }

  /** Undoes forget() when systemd refused the stop: visible again, with its stop request as before. */
  unforget(taskId: string, stopRequested: boolean): TaskEvent | undefined {
    return this.write([taskId], () =>
      this.db
        .transaction(() => {
          this.statements.unforget.run({ taskId, stopRequested: Number(stopRequested) });
          return this.eventOfNow(taskId, false);
        })
        .immediate(),
    );
  }

  /** The tasks a DELETE asked to forget whose rows are still here: their delete is not finished. */
  listForgotten(): TaskRecord[] {
    return this.statements.forgotten.all().map(fromRow);
  }

  /**
   * The row and its idempotency key (a DELETE finished). Its events stay, the last saying it was
   * deleted, for subscribers that resume later; retention prunes them (pruneOrphanEvents).
   */
  remove(taskId: string): void {
    this.write([taskId], () =>
      this.db
        .transaction(() => {
          this.statements.remove.run(taskId);
          this.statements.unnote.run(taskId);
        })
        .immediate(),
    );
  }

  /** Events of tasks no longer in the store, older than `before`. Returns how many went. */
  pruneOrphanEvents(before: string): number {
    return this.write([], () => this.statements.orphanEvents.run(before).changes);
  }

  /**
   * Finished tasks past retention, oldest first, at most `limit`: those that ended before
   * `finishedBefore`, then those beyond the newest `keep` finished ones. Nothing is removed here.
   */
  expired(finishedBefore: string | null, keep: number | null, limit: number): TaskRecord[] {
    const found = new Map<string, TaskRecord>();
    if (finishedBefore !== null) {
      for (const row of this.statements.expiredByAge.all(finishedBefore, limit)) found.set(row.task_id, fromRow(row));
    }
    if (keep !== null && found.size < limit) {
      for (const row of this.statements.expiredByCount.all(limit, keep)) found.set(row.task_id, fromRow(row));
    }
    return [...found.values()].slice(0, limit);
  }

  /** Removes these tasks (rows, keys, events) in one write. */
  removeAll(taskIds: readonly string[]): void {
    this.write(taskIds, () =>
      this.db
        .transaction(() => {
          for (const taskId of taskIds) {
            this.statements.remove.run(taskId);
            this.statements.removeEvents.run(taskId);
            this.statements.unnote.run(taskId);
          }
        })
        .immediate(),
    );
  }

  close(): void {
    this.activeRecords.clear();
    this.db.close();
  }

  /**
   * Runs one write (a statement, or a transaction) of the rows of `touching` (their records
   * forgotten here, whether it is committed or not) and tells the observer how it went. A refusal of
   * the file system becomes StoreUnwritableError; SQLite rolled the transaction back whole.
   */
  private write<T>(touching: readonly string[], work: () => T): T {
    let result: T;
    try {
      result = work();
    } catch (error) {
      const unwritable = asStoreUnwritable(error, this.stateDir);
      if (!unwritable) throw error;
      this.observer?.failed(unwritable);
      throw unwritable;
    } finally {
      for (const taskId of touching) this.activeRecords.delete(taskId);
    }
    this.observer?.wrote();
    return result;
  }

  private appendEvent(
    row: Omit<EventRow, 'id' | 'at' | 'recovered' | 'deleted'>,
    at: string,
    recovered: boolean,
    deleted = false,
  ): TaskEvent {
    const written = this.statements.appendEvent.get({ ...row, at, recovered: Number(recovered), deleted: Number(deleted) });
    if (!written) throw new Error(`the event of task ${row.task_id} was not written`);
    return eventFromRow(written);
  }

  /** An event that repeats the task's state now: a DELETE (deleted), or its undoing. */
  private eventOfNow(taskId: string, deleted: boolean): TaskEvent | undefined {
    const row = this.statements.get.get(taskId);
    if (!row) return undefined;
    const task = fromRow(row);
    return this.appendEvent(eventRowOf(task), nowIso(), false, deleted);
  }

  private query(sql: string): Database.Statement {
    let statement = this.queries.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.queries.set(sql, statement);
    }
    return statement;
  }
}

/** Which page of which tasks: after a cursor, at most `limit`, those that pass `filter`. */
export interface PageQuery {
  after?: number;
  limit: number;
  filter?: TaskFilter;
  /** The newest first (each page older than the one before); else in creation order. */
  newestFirst?: boolean;
}

const orderOf = (query: PageQuery) => (query.newestFirst ? 'seq DESC' : 'seq');

/**
 * The conditions of a page: visible tasks after the cursor that pass the filter. A time bound is
 * also a bound on seq, found in the creation-time index (the smallest seq created since, the
 * largest created before): the page is then read from where its tasks are instead of from the
 * first of 100 000 — exact whatever the clock did, since the bound is of the matching rows.
 */
function pageWhere(query: PageQuery, values: Record<string, number | string>): Where {
  const where = new Where('forgotten = 0', values);
  where.when(query.after, 'after', query.newestFirst ? 'seq < @after' : 'seq > @after');
  const filter = query.filter ?? {};
  if (filter.states !== undefined) {
    const names = filter.states.map((state, index) => {
      where.values[`state${index}`] = state;
      return `@state${index}`;
    });
    where.conditions.push(`state IN (${names.join(', ')})`);
  }
  where.when(filter.machine, 'machine', 'machine = @machine');
  const created = 'FROM tasks INDEXED BY tasks_created WHERE forgotten = 0 AND created_at';
  where.when(filter.since, 'since', `created_at >= @since AND seq >= (SELECT MIN(seq) ${created} >= @since)`);
  where.when(filter.until, 'until', `created_at < @until AND seq <= (SELECT MAX(seq) ${created} < @until)`);
  return where;
}

/** A query's conditions and their bound values: each optional filter one `when`. */
class Where {
  readonly conditions: string[];
  constructor(
    first: string,
    readonly values: Record<string, number | string>,
  ) {
    this.conditions = [first];
  }

  /** Adds `condition` (which names @`name`) when `value` is given. */
  when(value: number | string | undefined, name: string, condition: string): void {
    if (value === undefined) return;
    this.conditions.push(condition);
    this.values[name] = value;
  }

  sql(): string {
    return this.conditions.join(' AND ');
  }
}

function columnValue(value: unknown): unknown {
  if (typeof value === 'boolean') return Number(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return value;
}

/** What an event says of its task: the task as it is now. */
function eventRowOf(task: TaskRecord): Omit<EventRow, 'id' | 'at' | 'recovered' | 'deleted'> {
  return {
    task_id: task.taskId,
    machine: task.machine,
    state: task.state,
    exit_code: task.exitCode,
    result: task.result,
    detail: task.detail,
  };
}

function eventFromRow(row: EventRow): TaskEvent {
  return {
    id: row.id,
    taskId: row.task_id,
    machine: row.machine,
    state: row.state,
    exitCode: row.exit_code,
    result: row.result,
    detail: row.detail,
    at: row.at,
    recovered: row.recovered === 1,
    deleted: row.deleted === 1,
  };
}

export interface TaskBrief {
  taskId: string;
  state: TaskState;
}

/** brief: ids and states only (the tessia v1 list); full: every field. */
export type TaskView = 'brief' | 'full';

export interface TaskPage<View extends TaskView> {
  tasks: View extends 'brief' ? TaskBrief[] : TaskRecord[];
  /** The cursor of the next page (`after`), when there is one. */
  next?: number;
}

function fromRow(row: TaskRow): TaskRecord {
  const base = {
    taskId: row.task_id,
    machine: row.machine,
    unit: row.unit,
    createdAt: row.created_at,
    startedAt: row.started_at,
    invocationId: row.invocation_id,
    stopRequested: row.stop_requested === 1,
    usage: row.usage === null ? null : (JSON.parse(row.usage) as TaskUsage),
  };
  switch (row.state) {
    case TaskState.created:
    case TaskState.running:
    case TaskState.stopping:
      return { ...base, state: row.state, exitCode: null, result: null, finishedAt: null, detail: row.detail };
    case TaskState.exited:
    case TaskState.lost:
      return {
        ...base,
        state: row.state,
        exitCode: row.exit_code ?? -99,
        result: row.result,
        finishedAt: row.finished_at ?? row.created_at,
        detail: row.detail,
      };
    default:
      throw new Error(`task ${row.task_id} has an unknown state ${row.state}`);
  }
}
