import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFlatJsonObject } from '../../src/journal/flat-json.js';

/** What JSON.parse gives, in an object without a prototype (as the reader gives it). */
function parsedByJson(line: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return Object.assign(Object.create(null) as Record<string, unknown>, parsed);
}

const LINES = [
  '{"__CURSOR":"s=1;i=2","MESSAGE":"hello","PRIORITY":"6"}',
  '{}',
  ' { "A" : "b" , "C":"d" } ',
  '{"MESSAGE":"quote \\" backslash \\\\ newline \\n tab \\t unicode \\u00e9 \\ud83d\\ude00 slash \\/"}',
  '{"MESSAGE":"ends with a backslash \\\\"}',
  '{"MESSAGE":"é raw UTF-8, 😀"}',
  '{"K\\u0045Y":"an escaped key","MESSAGE":"x"}',
  '{"BIN":[104,0,105],"MULTI":["a",[1,2],"b"],"GONE":null}',
  '{"MULTI":["with ] and [ and \\" inside","x"]}',
  '{"__proto__":"a field named so","constructor":"and so"}',
  '{"NUMBER":1}',
  '{"TRUE":true}',
  '{"OBJECT":{"a":"b"}}',
  '{"A":"b",}',
  '{"A":"b"} trailing',
  '{"A":"unterminated}',
  '{"A":"raw \u0001 control"}',
  '{"A":"bad escape \\x41"}',
  '{"A":[1,2}',
  '{"A" "b"}',
  '["not","an","object"]',
  '"a string"',
  'null',
  '',
  '{"A":"b"}\n',
  '{"A":"1","A":"2"}',
];

describe('parseFlatJsonObject', () => {
  it('gives what JSON.parse gives, for the lines journalctl prints and for anything else', () => {
    for (const line of LINES) assert.deepEqual(parseFlatJsonObject(line), parsedByJson(line), line);
  });

  it('keeps a field named __proto__ as a field, the prototype untouched', () => {
    const parsed = parseFlatJsonObject('{"__proto__":"x","MESSAGE":"m"}');
    assert.equal(Object.getPrototypeOf(parsed), null);
    assert.deepEqual(Object.keys(parsed ?? {}), ['__proto__', 'MESSAGE']);
  });

  it('agrees with JSON.parse on generated entries: every kind of value, in random orders', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pieces = ['a', 'é', '😀', '"', '\\', '\n', '\u0001', '\u007f', ']', '[', ',', ':', '{', '}', ' ', 'null'];
    const text = () => Array.from({ length: Math.floor(random() * 8) }, () => pieces[Math.floor(random() * pieces.length)]).join('');
    const value = (): unknown => {
      const kind = random();
      if (kind < 0.6) return text();
      if (kind < 0.75) return Array.from({ length: Math.floor(random() * 5) }, () => Math.floor(random() * 256));
      if (kind < 0.9) return [text(), Array.from({ length: 3 }, () => Math.floor(random() * 256)), text()];
      return null;
    };
    for (let entry = 0; entry < 2000; entry++) {
      const fields: Record<string, unknown> = {};
      for (let field = Math.floor(random() * 12); field > 0; field--) fields[`${text()}${field}`] = value();
      const line = JSON.stringify(fields);
      assert.deepEqual(parseFlatJsonObject(line), parsedByJson(line), line);
    }
  });
});
