import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { journalFields, textLine } from '../../src/log.js';
import { runnerFields } from '../harness/runner-fields.js';

/** A `<N>text` line as journald stores it from the runner's stdout. */
function storedFromStdout(line: string): Record<string, string> {
  const parsed = /^<([0-7])>(.*)\n$/.exec(line);
  assert.ok(parsed, line);
  return { MESSAGE: parsed[2] as string, PRIORITY: parsed[1] as string, SYSLOG_IDENTIFIER: 'tessia-task-runner', _TRANSPORT: 'stdout' };
}

describe("runnerFields (the integration tests' reading of the runner log in either transport)", () => {
  it('reads back the fields that textLine wrote as KEY=value text, quoted values included', () => {
    const pinoLine = JSON.stringify({
      level: 40,
      time: 1,
      msg: 'task started',
      taskId: 'abcd1234',
      identity: 'token:mesh control',
      audit: 'task.start',
      source: '127.0.0.1',
      detail: { quoted: '"yes"' },
    });
    const fields = journalFields(pinoLine);
    assert.equal(Object.keys(fields).length, 8, JSON.stringify(fields));
    assert.deepEqual(runnerFields(storedFromStdout(textLine(fields))), { ...fields, _TRANSPORT: 'stdout' });
  });

  it("never lets a client's text look like one of the runner's fields in the text", () => {
    const fields = journalFields(
      JSON.stringify({ level: 30, msg: 'request completed', req: { url: '/v1/tasks?x=TESSIA_AUDIT=task.start' } }),
    );
    const line = textLine(fields);
    assert.doesNotMatch(line, /TESSIA_AUDIT=task\.start/, line);
    assert.deepEqual(runnerFields(storedFromStdout(line)), { ...fields, _TRANSPORT: 'stdout' });
  });

  it('leaves a native entry as journald stored it', () => {
    const entry = { MESSAGE: 'task started X=1', TESSIA_TASK_ID: 'abcd1234', _TRANSPORT: 'journal' };
    assert.deepEqual(runnerFields(entry), entry);
  });
});
