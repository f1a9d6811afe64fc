/** The Cockpit page's pure parts (src/cockpit/wire.ts, format.ts): what it reads from the runner, and how it says it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytes, cpuTime, duration, exitMeaning, priorityClass } from '../../src/cockpit/format.js';
import { completeLines, nextPage, parseLine } from '../../src/cockpit/wire.js';

describe('the Cockpit page reading the runner', () => {
  it('takes the complete lines of a block and leaves the rest for the next', () => {
    assert.deepEqual(completeLines('{"a":1}\n{"b":'), { lines: ['{"a":1}'], used: 8 });
    assert.deepEqual(completeLines('{"b":'), { lines: [], used: 0 });
    assert.deepEqual(completeLines('{"a":1}\n\n{"b":2}\n'), { lines: ['{"a":1}', '{"b":2}'], used: 17 });
  });

  it('parses objects only: a cut or foreign line is null', () => {
    assert.deepEqual(parseLine('{"type":"entry"}'), { type: 'entry' });
    for (const line of ['{"type":', '[1]', '"text"', 'null']) assert.equal(parseLine(line), null, line);
  });

  it('follows the Link header to the next page', () => {
    assert.equal(nextPage('</v1/tasks?view=full&order=newest&after=41>; rel="next"'), '/v1/tasks?view=full&order=newest&after=41');
    assert.equal(nextPage(undefined), null);
    assert.equal(nextPage('</v1/x>; rel="prev"'), null);
  });
});

describe('the Cockpit page saying things', () => {
  it("names the runner's exit codes, and leaves the others to the machine", () => {
    assert.equal(exitMeaning(0), 'success');
    assert.equal(exitMeaning(-1), 'stopped on request');
    assert.equal(exitMeaning(-2), 'runtime limit reached');
    assert.equal(exitMeaning(-99), 'undetermined');
    assert.equal(exitMeaning(3), "the machine's own code");
    assert.equal(exitMeaning(null), '');
  });

  it('writes durations, sizes and CPU time for people', () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
    assert.equal(duration(at(0), at(120)), '120 ms');
    assert.equal(duration(at(0), at(4200)), '4.2 s');
    assert.equal(duration(at(0), at(185_000)), '3 min 05 s');
    assert.equal(duration(at(0), at(3_720_000)), '1 h 02 min');
    assert.equal(duration(at(0), null, new Date(at(2000))), '2.0 s', 'still running: until now');
    assert.equal(duration(null, null), '');
    assert.equal(bytes(512), '512 B');
    assert.equal(bytes(10.2 * 2 ** 20), '10.2 MiB');
    assert.equal(bytes(null), '');
    assert.equal(cpuTime(165_000_000), '165 ms');
  });

  it('colours an entry by its priority, as journalctl does, and takes anything else as info', () => {
    assert.equal(priorityClass(3), 'tessia-log--err');
    assert.equal(priorityClass(4), 'tessia-log--warning');
    assert.equal(priorityClass(7), 'tessia-log--debug');
    assert.equal(priorityClass('3'), 'tessia-log--info');
    assert.equal(priorityClass(42), 'tessia-log--debug');
  });
});
