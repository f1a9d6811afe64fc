import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskError } from '../../src/tasks/errors.js';
import { StoreUnwritableError, asStoreUnwritable, storeWriteFault, type StoreWriteFault } from '../../src/tasks/store-errors.js';

const withCode = (code: string, message = 'refused') => Object.assign(new Error(message), { code });

describe('storeWriteFault', () => {
  const cases: [string, StoreWriteFault | null][] = [
    ['SQLITE_FULL', 'full'],
    // A store opened on a full disk: its shared-memory file cannot grow.
    ['SQLITE_IOERR_SHMSIZE', 'full'],
    ['ENOSPC', 'full'],
    ['EDQUOT', 'full'],
    ['SQLITE_IOERR', 'io'],
    ['SQLITE_IOERR_WRITE', 'io'],
    ['SQLITE_IOERR_FSYNC', 'io'],
    ['EIO', 'io'],
    ['SQLITE_READONLY', 'read-only'],
    ['SQLITE_READONLY_DBMOVED', 'read-only'],
    ['EROFS', 'read-only'],
    // Not the file system's fault: the runner's, or a lock that waits.
    ['SQLITE_CONSTRAINT_UNIQUE', null],
    ['SQLITE_BUSY', null],
    ['SQLITE_ERROR', null],
    ['EACCES', null],
  ];
  for (const [code, fault] of cases) {
    it(`takes ${code} for ${fault ?? 'no fault of the file system'}.`, () => {
      assert.equal(storeWriteFault(withCode(code)), fault);
    });
  }

  it('takes an error without a code, or no error, for no fault of the file system.', () => {
    assert.equal(storeWriteFault(new Error('database or disk is full')), null);
    assert.equal(storeWriteFault(null), null);
    assert.equal(storeWriteFault(undefined), null);
    assert.equal(storeWriteFault({ code: 13 }), null);
  });
});

describe('StoreUnwritableError', () => {
  it("says what is full and where, with SQLite's own words, under the code STORE_UNWRITABLE.", () => {
    const error = asStoreUnwritable(withCode('SQLITE_FULL', 'database or disk is full'), '/var/lib/tessia-task-runner');
    assert.ok(error instanceof StoreUnwritableError);
    assert.ok(error instanceof TaskError);
    assert.equal(error.code, 'STORE_UNWRITABLE');
    assert.equal(error.fault, 'full');
    assert.equal(
      error.message,
      'no space left for the task store under /var/lib/tessia-task-runner (SQLITE_FULL: database or disk is full)',
    );
  });

  it('names an I/O error and a read-only file system as such.', () => {
    assert.match(
      asStoreUnwritable(withCode('SQLITE_IOERR_WRITE'), '/s')?.message ?? '',
      /^the task store under \/s cannot be written: an I\/O error/,
    );
    assert.match(asStoreUnwritable(withCode('EROFS'), '/s')?.message ?? '', /^the task store under \/s is read-only/);
  });

  it('leaves any other error as it is.', () => {
    assert.equal(asStoreUnwritable(withCode('SQLITE_CONSTRAINT_UNIQUE'), '/s'), undefined);
  });

  it('says what it kept from happening, and that the request may be sent again.', () => {
    const error = new StoreUnwritableError('full', '/s', withCode('SQLITE_FULL', 'database or disk is full'));
    const refused = error.refusing('task not started');
    assert.equal(refused.code, 'STORE_UNWRITABLE');
    assert.equal(
      refused.message,
      'task not started: no space left for the task store under /s (SQLITE_FULL: database or disk is full); try again once the store takes writes',
    );
    assert.equal(refused.cause, error);
  });
});
