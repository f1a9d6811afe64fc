import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endText, endView, entryJson, entryText, type EntryViewOptions } from '../../src/api/log-views.js';
import { PRIORITY_NAMES } from '../../src/journal/priority.js';
import type { Field, JournalEntry } from '../../src/journal/entry.js';
import { ExitCode, TaskState } from '../../src/tasks/model.js';
import { finishedTask, runningTask } from '../harness/task-records.js';

const CURSOR = 's=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d5e;t=62b1c2d3e4f50;x=9f8e7d6c5b4a3921';
const REALTIME = 1767323045678901n;
const ISO = '2026-01-02T03:04:05.678901Z';

/** A task's output entry, as parseJournalLine gives it; `fields` replaces or adds fields. */
function entry(fields: Record<string, Field> = {}, realtime = REALTIME): JournalEntry {
  return {
    cursor: CURSOR,
    realtime,
    monotonic: 123456789n,
    fields: {
      _PID: '4242',
      _UID: '0',
      _COMM: 'tessia-echo',
      _SYSTEMD_UNIT: 'tessia-task-abcd1234.service',
      PRIORITY: '6',
      SYSLOG_IDENTIFIER: 'tessia-echo',
      TESSIA_TASK_ID: 'abcd1234',
      MESSAGE: 'hello world',
      ...fields,
    },
  };
}

/** The entry with the named fields removed. */
function without(value: JournalEntry, ...names: string[]): JournalEntry {
  const fields = { ...value.fields };
  for (const name of names) delete fields[name];
  return { ...value, fields };
}

/** An entry's view, read back from its line of JSON. */
const viewOf = (value: JournalEntry, options: EntryViewOptions) => JSON.parse(entryJson(value, options)) as Record<string, unknown>;

const base64 = (bytes: number[]) => ({ base64: Buffer.from(bytes).toString('base64') });

describe('entryJson promoted parts', () => {
  it('gives the type, cursor, timestamp, priority, message and source of a task entry.', () => {
    const view = viewOf(entry(), { trusted: false });
    assert.equal(view['type'], 'entry');
    assert.equal(view['cursor'], CURSOR);
    assert.equal(view['timestamp'], ISO);
    assert.equal(view['priority'], 6);
    assert.equal(view['priorityName'], 'info');
    assert.equal(view['message'], 'hello world');
    assert.equal(view['source'], 'task');
  });

  it('gives the whole view of a task entry, trusted fields hidden.', () => {
    assert.deepEqual(viewOf(entry(), { trusted: false }), {
      type: 'entry',
      cursor: CURSOR,
      timestamp: ISO,
      priority: 6,
      priorityName: 'info',
      message: 'hello world',
      source: 'task',
      fields: { SYSLOG_IDENTIFIER: 'tessia-echo', TESSIA_TASK_ID: 'abcd1234' },
    });
  });

  for (let priority = 0; priority <= 7; priority++) {
    it(`gives priority ${priority} the name ${PRIORITY_NAMES[priority]}.`, () => {
      const view = viewOf(entry({ PRIORITY: String(priority) }), { trusted: false });
      assert.equal(view['priority'], priority);
      assert.equal(view['priorityName'], PRIORITY_NAMES[priority]);
    });
  }

  it('names the priorities emerg to debug in syslog order.', () => {
    assert.deepEqual([...PRIORITY_NAMES], ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']);
  });

  it('gives priority 6 (info) to an entry without PRIORITY.', () => {
    const view = viewOf(without(entry(), 'PRIORITY'), { trusted: false });
    assert.equal(view['priority'], 6);
    assert.equal(view['priorityName'], 'info');
  });

  for (const value of ['8', '-1', '2.5', 'err', 'high']) {
    it(`gives priority 6 (info) to an entry with the invalid PRIORITY ${JSON.stringify(value)}.`, () => {
      const view = viewOf(entry({ PRIORITY: value }), { trusted: false });
      assert.equal(view['priority'], 6);
      assert.equal(view['priorityName'], 'info');
    });
  }

  // Source bug: Number('') is 0, so an empty PRIORITY (or one of only blanks) reads as emerg.
  it('gives priority 6 (info) to an entry with an empty PRIORITY.', () => {
    for (const value of ['', ' ']) {
      const view = viewOf(entry({ PRIORITY: value }), { trusted: false });
      assert.equal(view['priority'], 6, JSON.stringify(value));
      assert.equal(view['priorityName'], 'info', JSON.stringify(value));
    }
  });

  it('reads the priority of a binary or multi-valued PRIORITY from its first value.', () => {
    assert.equal(viewOf(entry({ PRIORITY: base64([0x33]) }), { trusted: false })['priority'], 3);
    assert.equal(viewOf(entry({ PRIORITY: ['4', '2'] }), { trusted: false })['priority'], 4);
  });

  it('gives the timestamp as ISO with six fractional digits.', () => {
    assert.equal(viewOf(entry({}, 1767323045000001n), { trusted: false })['timestamp'], '2026-01-02T03:04:05.000001Z');
    assert.equal(viewOf(entry({}, 1767323045678000n), { trusted: false })['timestamp'], '2026-01-02T03:04:05.678000Z');
  });

  it('gives a null timestamp to an entry without a realtime timestamp.', () => {
    assert.equal(viewOf(entry({}, 0n), { trusted: false })['timestamp'], null);
  });

  it('gives an empty message to an entry without MESSAGE.', () => {
    assert.equal(viewOf(without(entry(), 'MESSAGE'), { trusted: false })['message'], '');
  });

  it('never repeats MESSAGE or PRIORITY in fields, even when trusted or named.', () => {
    const trusted = viewOf(entry(), { trusted: true })['fields'] as Record<string, Field>;
    const named = viewOf(entry(), { trusted: false, only: new Set(['MESSAGE', 'PRIORITY']) })['fields'];
    assert.equal(Object.hasOwn(trusted, 'MESSAGE'), false);
    assert.equal(Object.hasOwn(trusted, 'PRIORITY'), false);
    assert.deepEqual(named, {});
  });
});

describe('entryJson source', () => {
  it('gives source systemd for an entry from PID 1 without TESSIA_TASK_ID.', () => {
    const systemd = without(
      entry({ _PID: '1', _COMM: 'systemd', SYSLOG_IDENTIFIER: 'systemd', UNIT: 'tessia-task-abcd1234.service' }),
      'TESSIA_TASK_ID',
    );
    assert.equal(viewOf(systemd, { trusted: false })['source'], 'systemd');
  });

  it('gives source task for an entry from PID 1 with TESSIA_TASK_ID.', () => {
    assert.equal(viewOf(entry({ _PID: '1' }), { trusted: false })['source'], 'task');
  });

  it('gives source task for an entry from another PID without TESSIA_TASK_ID.', () => {
    assert.equal(viewOf(without(entry(), 'TESSIA_TASK_ID'), { trusted: false })['source'], 'task');
  });

  it('gives source task for an entry without _PID.', () => {
    assert.equal(viewOf(without(entry(), '_PID', 'TESSIA_TASK_ID'), { trusted: false })['source'], 'task');
  });
});

describe('entryJson fields', () => {
  it('hides underscore fields unless trusted.', () => {
    const fields = viewOf(entry({ __SEQNUM: '6699' }), { trusted: false })['fields'] as Record<string, Field>;
    assert.deepEqual(Object.keys(fields).sort(), ['SYSLOG_IDENTIFIER', 'TESSIA_TASK_ID']);
  });

  it('shows underscore and double-underscore fields when trusted.', () => {
    const fields = viewOf(entry({ __SEQNUM: '6699' }), { trusted: true })['fields'];
    assert.deepEqual(fields, {
      _PID: '4242',
      _UID: '0',
      _COMM: 'tessia-echo',
      _SYSTEMD_UNIT: 'tessia-task-abcd1234.service',
      SYSLOG_IDENTIFIER: 'tessia-echo',
      TESSIA_TASK_ID: 'abcd1234',
      __SEQNUM: '6699',
    });
  });

  it('projects fields to the named ones with only.', () => {
    const fields = viewOf(entry({ CODE_LINE: '12' }), { trusted: false, only: new Set(['TESSIA_TASK_ID', 'CODE_LINE']) })['fields'];
    assert.deepEqual(fields, { TESSIA_TASK_ID: 'abcd1234', CODE_LINE: '12' });
  });

  it('includes trusted fields named in only, even when not trusted.', () => {
    const fields = viewOf(entry(), { trusted: false, only: new Set(['_PID', '_SYSTEMD_UNIT']) })['fields'];
    assert.deepEqual(fields, { _PID: '4242', _SYSTEMD_UNIT: 'tessia-task-abcd1234.service' });
  });

  it('leaves out fields named in only that the entry does not have.', () => {
    const fields = viewOf(entry(), { trusted: true, only: new Set(['NOT_THERE', 'SYSLOG_IDENTIFIER']) })['fields'];
    assert.deepEqual(fields, { SYSLOG_IDENTIFIER: 'tessia-echo' });
  });

  it('gives an empty fields object for an empty only set.', () => {
    assert.deepEqual(viewOf(entry(), { trusted: true, only: new Set() })['fields'], {});
  });

  it('keeps binary and multi-valued field values lossless.', () => {
    const binary = base64([0xff, 0x00]);
    const fields = viewOf(entry({ BLOB: binary, TAG: ['a', binary] }), { trusted: false })['fields'];
    assert.deepEqual(fields, {
      SYSLOG_IDENTIFIER: 'tessia-echo',
      TESSIA_TASK_ID: 'abcd1234',
      BLOB: binary,
      TAG: ['a', binary],
    });
  });
});

describe('entryJson messageRaw', () => {
  it('has no messageRaw for a text message.', () => {
    assert.equal(Object.hasOwn(viewOf(entry(), { trusted: false }), 'messageRaw'), false);
  });

  it('has no messageRaw for an entry without MESSAGE.', () => {
    assert.equal(Object.hasOwn(viewOf(without(entry(), 'MESSAGE'), { trusted: false }), 'messageRaw'), false);
  });

  it('keeps the exact bytes of a binary message in messageRaw and its lenient text in message.', () => {
    const raw = base64([0x6f, 0x6b, 0xff, 0x0a]);
    const view = viewOf(entry({ MESSAGE: raw }), { trusted: false });
    assert.deepEqual(view['messageRaw'], raw);
    assert.equal(view['message'], 'ok\ufffd\n');
  });

  it('keeps every value of a multi-valued message with a binary one in messageRaw.', () => {
    const raw = [base64([0xff]), 'second'];
    const view = viewOf(entry({ MESSAGE: raw }), { trusted: false });
    assert.deepEqual(view['messageRaw'], raw);
    assert.equal(view['message'], '\ufffd');
  });

  it('keeps every value of a MESSAGE given more than once in messageRaw, and the first as message.', () => {
    const view = viewOf(entry({ MESSAGE: ['first', 'second'] }), { trusted: false });
    assert.equal(view['message'], 'first');
    assert.deepEqual(view['messageRaw'], ['first', 'second']);
  });
});

describe('entryJson text', () => {
  it('is what JSON.stringify makes of the view, key order and escapes included.', () => {
    const tricky = 'quote " backslash \\ newline \n tab \t nul \u0000 del \u007f lone surrogate \ud800 emoji \u{1f600} </script>';
    const value = entry({ MESSAGE: [tricky, base64([0xff])], CODE_FILE: tricky, TAGS: ['a', base64([1, 2])], _EXE: '/usr/bin/x' });
    const expected = {
      type: 'entry',
      cursor: CURSOR,
      timestamp: ISO,
      priority: 6,
      priorityName: 'info',
      message: tricky,
      source: 'task',
      fields: {
        _PID: '4242',
        _UID: '0',
        _COMM: 'tessia-echo',
        _SYSTEMD_UNIT: 'tessia-task-abcd1234.service',
        SYSLOG_IDENTIFIER: 'tessia-echo',
        TESSIA_TASK_ID: 'abcd1234',
        CODE_FILE: tricky,
        TAGS: ['a', base64([1, 2])],
        _EXE: '/usr/bin/x',
      },
      messageRaw: [tricky, base64([0xff])],
    };
    assert.equal(entryJson(value, { trusted: true }), JSON.stringify(expected));
  });

  it('is the same text for the default view, a chosen field, and an entry without a timestamp.', () => {
    assert.equal(
      entryJson(entry(), { trusted: false }),
      `{"type":"entry","cursor":"${CURSOR}","timestamp":"${ISO}","priority":6,"priorityName":"info","message":"hello world","source":"task","fields":{"SYSLOG_IDENTIFIER":"tessia-echo","TESSIA_TASK_ID":"abcd1234"}}`,
    );
    assert.equal(
      entryJson(entry({}, 0n), { trusted: false, only: new Set(['_PID']) }),
      `{"type":"entry","cursor":"${CURSOR}","timestamp":null,"priority":6,"priorityName":"info","message":"hello world","source":"task","fields":{"_PID":"4242"}}`,
    );
  });
});

describe('endView', () => {
  it('gives the end of a finished task.', () => {
    assert.deepEqual(endView(finishedTask({ detail: 'the machine exited with status 0' })), {
      type: 'end',
      taskId: 'abcd1234',
      state: 'exited',
      exitCode: 0,
      result: 'success',
      finishedAt: '2026-01-02T03:04:06.000000Z',
      detail: 'the machine exited with status 0',
    });
  });

  it('gives the end of a lost task with an undetermined exit code.', () => {
    const view = endView(finishedTask({ state: TaskState.lost, exitCode: ExitCode.undetermined, result: null }));
    assert.equal(view.state, 'lost');
    assert.equal(view.exitCode, -99);
    assert.equal(view.result, null);
  });

  it('gives nulls for a task that has not finished.', () => {
    assert.deepEqual(endView(runningTask()), {
      type: 'end',
      taskId: 'abcd1234',
      state: 'running',
      exitCode: null,
      result: null,
      finishedAt: null,
      detail: null,
    });
  });

  it('leaves out the task record parts that are not about its end.', () => {
    const view = endView(finishedTask()) as Record<string, unknown>;
    for (const name of ['machine', 'unit', 'createdAt', 'startedAt', 'invocationId', 'stopRequested']) {
      assert.equal(Object.hasOwn(view, name), false, name);
    }
  });
});

describe('entryText', () => {
  it('formats an entry as "<iso> <identifier>[<pid>]: <message>".', () => {
    assert.equal(entryText(entry()), `${ISO} tessia-echo[4242]: hello world`);
  });

  it('prefers SYSLOG_PID to _PID.', () => {
    assert.equal(entryText(entry({ SYSLOG_PID: '77' })), `${ISO} tessia-echo[77]: hello world`);
  });

  it('falls back to _COMM when there is no SYSLOG_IDENTIFIER.', () => {
    assert.equal(entryText(without(entry({ _COMM: 'sh' }), 'SYSLOG_IDENTIFIER')), `${ISO} sh[4242]: hello world`);
  });

  it('falls back to unknown when there is neither SYSLOG_IDENTIFIER nor _COMM.', () => {
    assert.equal(entryText(without(entry(), 'SYSLOG_IDENTIFIER', '_COMM')), `${ISO} unknown[4242]: hello world`);
  });

  it('leaves out the brackets when there is neither SYSLOG_PID nor _PID.', () => {
    assert.equal(entryText(without(entry(), '_PID')), `${ISO} tessia-echo: hello world`);
  });

  it('gives a dash for the time of an entry without a realtime timestamp.', () => {
    assert.equal(entryText(entry({}, 0n)), '- tessia-echo[4242]: hello world');
  });

  it('gives an empty message for an entry without MESSAGE.', () => {
    assert.equal(entryText(without(entry(), 'MESSAGE')), `${ISO} tessia-echo[4242]: `);
  });

  it('decodes a binary message and takes the first of several values.', () => {
    assert.equal(entryText(entry({ MESSAGE: base64([0x68, 0x69]) })), `${ISO} tessia-echo[4242]: hi`);
    assert.equal(entryText(entry({ MESSAGE: ['first', 'second'] })), `${ISO} tessia-echo[4242]: first`);
  });

  it('formats a systemd entry about the task unit.', () => {
    const systemd = without(
      entry({ _PID: '1', _COMM: 'systemd', SYSLOG_IDENTIFIER: 'systemd', MESSAGE: 'Started tessia-task-abcd1234.service.' }),
      'TESSIA_TASK_ID',
    );
    assert.equal(entryText(systemd), `${ISO} systemd[1]: Started tessia-task-abcd1234.service.`);
  });
});

describe('endText', () => {
  it('formats the end of a successful task.', () => {
    assert.equal(endText(finishedTask()), '-- task abcd1234 exited, exit code 0 (success) --');
  });

  it('formats the end of a canceled task.', () => {
    assert.equal(
      endText(finishedTask({ exitCode: ExitCode.canceled, result: 'exit-code', stopRequested: true })),
      '-- task abcd1234 exited, exit code -1 (exit-code) --',
    );
  });

  it('leaves out the result when it is unknown.', () => {
    assert.equal(
      endText(finishedTask({ state: TaskState.lost, exitCode: ExitCode.undetermined, result: null })),
      '-- task abcd1234 lost, exit code -99 --',
    );
  });

  it('gives only the state of a task that has not finished.', () => {
    assert.equal(endText(runningTask()), '-- task abcd1234 running --');
  });
});
