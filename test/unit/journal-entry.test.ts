import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fieldText, parseJournalLine, type JournalEntry } from '../../src/journal/entry.js';

const CURSOR = 's=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d5e;t=62b1c2d3e4f50;x=9f8e7d6c5b4a3921';

/** A journalctl --output=json line with the usual fields, `extra` merged in. */
function line(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    __CURSOR: CURSOR,
    __REALTIME_TIMESTAMP: '1767323045678901',
    __MONOTONIC_TIMESTAMP: '123456789',
    _BOOT_ID: 'fedcba9876543210fedcba9876543210',
    _PID: '4242',
    _UID: '0',
    _COMM: 'tessia-echo',
    _SYSTEMD_UNIT: 'tessia-task-abcd1234.service',
    PRIORITY: '6',
    SYSLOG_IDENTIFIER: 'tessia-echo',
    TESSIA_TASK_ID: 'abcd1234',
    MESSAGE: 'hello world',
    ...extra,
  });
}

/** The fields that have a value: the parser leaves the address fields (and values it drops) as undefined keys. */
function valued(fields: JournalEntry['fields']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function parse(text: string): JournalEntry {
  const entry = parseJournalLine(text);
  assert.ok(entry, `expected an entry from ${text}`);
  return entry;
}

describe('parseJournalLine of a normal entry', () => {
  it('takes the cursor from __CURSOR.', () => {
    assert.equal(parse(line()).cursor, CURSOR);
  });

  it('gives the realtime and monotonic timestamps as bigint microseconds.', () => {
    const entry = parse(line());
    assert.equal(typeof entry.realtime, 'bigint');
    assert.equal(entry.realtime, 1767323045678901n);
    assert.equal(typeof entry.monotonic, 'bigint');
    assert.equal(entry.monotonic, 123456789n);
  });

  it('keeps timestamps beyond the safe integer range exact.', () => {
    const entry = parse(line({ __REALTIME_TIMESTAMP: '18446744073709551615' }));
    assert.equal(entry.realtime, 18446744073709551615n);
  });

  it('keeps every other field, trusted ones included, without the three address fields.', () => {
    assert.deepEqual(valued(parse(line()).fields), {
      _BOOT_ID: 'fedcba9876543210fedcba9876543210',
      _PID: '4242',
      _UID: '0',
      _COMM: 'tessia-echo',
      _SYSTEMD_UNIT: 'tessia-task-abcd1234.service',
      PRIORITY: '6',
      SYSLOG_IDENTIFIER: 'tessia-echo',
      TESSIA_TASK_ID: 'abcd1234',
      MESSAGE: 'hello world',
    });
  });

  it('has no value for __CURSOR, __REALTIME_TIMESTAMP and __MONOTONIC_TIMESTAMP among the fields, nor in their JSON.', () => {
    const fields = parse(line()).fields;
    const json = JSON.parse(JSON.stringify(fields)) as Record<string, unknown>;
    for (const name of ['__CURSOR', '__REALTIME_TIMESTAMP', '__MONOTONIC_TIMESTAMP']) {
      assert.equal(fields[name], undefined, name);
      assert.equal(Object.hasOwn(json, name), false, name);
    }
  });

  it('keeps other double-underscore fields such as __SEQNUM.', () => {
    const fields = parse(line({ __SEQNUM: '6699', __SEQNUM_ID: '0123456789abcdef0123456789abcdef' })).fields;
    assert.equal(fields['__SEQNUM'], '6699');
    assert.equal(fields['__SEQNUM_ID'], '0123456789abcdef0123456789abcdef');
  });

  it('keeps an empty string value.', () => {
    assert.equal(parse(line({ MESSAGE: '' })).fields['MESSAGE'], '');
  });

  it('keeps text with non-ASCII characters as a string.', () => {
    assert.equal(parse(line({ MESSAGE: 'grüße ✓' })).fields['MESSAGE'], 'grüße ✓');
  });
});

describe('parseJournalLine of binary and multi-valued fields', () => {
  it('turns a non-UTF-8 value given as an array of byte numbers into base64 of the exact bytes.', () => {
    const bytes = [0x68, 0x69, 0xff, 0x00, 0x0a, 0x80];
    const field = parse(line({ MESSAGE: bytes })).fields['MESSAGE'];
    assert.deepEqual(field, { base64: Buffer.from(bytes).toString('base64') });
    assert.ok(typeof field === 'object' && !Array.isArray(field));
    assert.deepEqual([...Buffer.from(field.base64, 'base64')], bytes);
  });

  it('turns a field that occurs several times as strings into an array of strings.', () => {
    assert.deepEqual(parse(line({ TAG: ['one', 'two', 'three'] })).fields['TAG'], ['one', 'two', 'three']);
  });

  it('turns a multi-valued field mixing strings and byte arrays into an array of strings and base64 values.', () => {
    const field = parse(line({ TAG: ['text', [0xff, 0xfe], 'more', [0x00]] })).fields['TAG'];
    assert.deepEqual(field, ['text', { base64: '//4=' }, 'more', { base64: 'AA==' }]);
  });

  it('turns a multi-valued field of byte arrays only into an array of base64 values.', () => {
    const field = parse(line({ TAG: [[0x01, 0x02], [0x03]] })).fields['TAG'];
    assert.deepEqual(field, [{ base64: 'AQI=' }, { base64: 'Aw==' }]);
  });

  it('drops a null value, a field journalctl left out for its size.', () => {
    const fields = parse(line({ BIG: null })).fields;
    assert.equal(fields['BIG'], undefined);
    assert.equal(Object.hasOwn(valued(fields), 'BIG'), false);
    assert.equal(fields['MESSAGE'], 'hello world');
  });

  it('drops null values inside a multi-valued field.', () => {
    assert.deepEqual(parse(line({ TAG: ['a', null, 'b'] })).fields['TAG'], ['a', 'b']);
  });

  it('drops values that journalctl never gives, such as numbers, booleans and objects.', () => {
    const fields = parse(line({ NUMBER: 5, FLAG: true, OBJECT: { a: 'b' } })).fields;
    for (const name of ['NUMBER', 'FLAG', 'OBJECT']) assert.equal(fields[name], undefined, name);
  });
});

describe('parseJournalLine of lines that are not entries', () => {
  const notEntries: [string, string][] = [
    ['an empty line', ''],
    ['text that is not JSON', 'Hint: You are currently not seeing messages from other users and the system.'],
    ['truncated JSON', line().slice(0, 40)],
    ['a JSON array', JSON.stringify([{ __CURSOR: CURSOR }])],
    ['a JSON string', JSON.stringify(CURSOR)],
    ['JSON null', 'null'],
    ['a JSON number', '42'],
    ['an object without __CURSOR', JSON.stringify({ MESSAGE: 'hello', __REALTIME_TIMESTAMP: '1' })],
    ['an object with a numeric cursor', JSON.stringify({ __CURSOR: 12, MESSAGE: 'hello' })],
    ['an object with a null cursor', JSON.stringify({ __CURSOR: null, MESSAGE: 'hello' })],
    ['an object with a byte-array cursor', JSON.stringify({ __CURSOR: [0x73, 0x3d], MESSAGE: 'hello' })],
  ];
  for (const [label, text] of notEntries) {
    it(`gives null for ${label}.`, () => {
      assert.equal(parseJournalLine(text), null);
    });
  }
});

describe('parseJournalLine timestamps', () => {
  it('gives 0n for missing timestamps.', () => {
    const entry = parse(JSON.stringify({ __CURSOR: CURSOR, MESSAGE: 'hello' }));
    assert.equal(entry.realtime, 0n);
    assert.equal(entry.monotonic, 0n);
    assert.deepEqual(valued(entry.fields), { MESSAGE: 'hello' });
  });

  it('gives 0n for timestamps that are not decimal strings.', () => {
    for (const value of [1767323045678901, '', '-5', '1.5', '0x10', null]) {
      const entry = parse(JSON.stringify({ __CURSOR: CURSOR, __REALTIME_TIMESTAMP: value, __MONOTONIC_TIMESTAMP: value }));
      assert.equal(entry.realtime, 0n, JSON.stringify(value));
      assert.equal(entry.monotonic, 0n, JSON.stringify(value));
    }
  });
});

describe('fieldText', () => {
  it('gives a string as it is.', () => {
    assert.equal(fieldText('hello'), 'hello');
    assert.equal(fieldText(''), '');
  });

  it('decodes a base64 value as UTF-8.', () => {
    assert.equal(fieldText({ base64: Buffer.from('grüße', 'utf8').toString('base64') }), 'grüße');
  });

  it('decodes invalid UTF-8 leniently with replacement characters.', () => {
    assert.equal(fieldText({ base64: Buffer.from([0x68, 0x69, 0xff]).toString('base64') }), 'hi\ufffd');
  });

  it('gives the first value of an array.', () => {
    assert.equal(fieldText(['first', 'second']), 'first');
    assert.equal(fieldText([{ base64: Buffer.from('bytes').toString('base64') }, 'second']), 'bytes');
  });

  it('gives undefined for an empty array.', () => {
    assert.equal(fieldText([]), undefined);
  });

  it('gives undefined for undefined.', () => {
    assert.equal(fieldText(undefined), undefined);
  });

  it('gives the text of a parsed binary message.', () => {
    const entry = parse(line({ MESSAGE: [0x6f, 0x6b, 0xff] }));
    assert.equal(fieldText(entry.fields['MESSAGE']), 'ok\ufffd');
  });
});
