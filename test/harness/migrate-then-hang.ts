/**
 * Opens the task store in the directory given as argv[2] with the runner's own code, and stops dead in
 * the middle of the first migration: once its SQL has run inside the migration's transaction, before the
 * version is recorded and the transaction committed, it prints `in-migration` and waits to be killed.
 * Only the pause is the test's; the SQL, the transaction and the store are the runner's.
 */
import Database from 'better-sqlite3';
import { writeSync } from 'node:fs';
import { TaskStore } from '../../src/tasks/store.js';

const exec = Object.getOwnPropertyDescriptor(Database.prototype, 'exec')?.value as Database.Database['exec'];
Database.prototype.exec = function execThenHang(this: Database.Database, source: string) {
  const result = exec.call(this, source);
  if (this.inTransaction) {
    writeSync(1, 'in-migration\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  return result;
};

new TaskStore(process.argv[2] ?? '');
