/** The Cockpit page's pure parts (src/cockpit/wire.ts, format.ts): what it reads from the runner, and how it says it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import type { fullView, machineView } from '../../src/api/views.js';
import type { MachineInfo as PageMachine, Task as PageTask, TaskState as PageState } from '../../src/cockpit/api-types.js';
import type { TaskState } from '../../src/tasks/model.js';
import { DEFAULT_SOCKET, TASK_ID, TASK_STATES as PAGE_STATES } from '../../src/cockpit/api-types.js';
import { bytes, cpuTime, duration, EXIT_MEANINGS, exitMeaning, priorityClass, truncated, visible } from '../../src/cockpit/format.js';
import { completeLines, nextPage, parseLine } from '../../src/cockpit/wire.js';
import { PACKAGE_API_SOCKET } from '../../src/package-layout.js';
import { PRIORITY_NAMES } from '../../src/journal/priority.js';
import { ExitCode, TASK_STATES } from '../../src/tasks/model.js';
import { TASK_ID_PATTERN } from '../../src/tasks/unit-names.js';

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

  it("colours an entry by the priority's name the runner gives it, and takes anything else as info", () => {
    assert.equal(priorityClass('err'), 'tessia-log--err');
    assert.equal(priorityClass('warning'), 'tessia-log--warning');
    assert.equal(priorityClass('x y'), 'tessia-log--info');
    assert.equal(priorityClass(3), 'tessia-log--info');
    // Every name the runner gives but info has its rule in the page's styles.
    const css = readFileSync(new URL('../../src/cockpit/tasks.css', import.meta.url), 'utf8');
    for (const name of PRIORITY_NAMES.filter((each) => each !== 'info')) assert.ok(css.includes(`.tessia-log--${name}`), name);
  });

  it("shows a task's control characters and bidirectional overrides, and cuts what is too long", () => {
    assert.equal(visible('a\tb\nc'), 'a\tb\nc', 'tabs and newlines stay');
    assert.equal(visible('\u001b[31mred\u202etxt'), '\\u001b[31mred\\u202etxt');
    assert.equal(visible('\u009b\u200f\u2028'), '\\u009b\\u200f\\u2028', 'C1 controls, bidi marks, line separators');
    assert.equal(truncated('abcdef', 4), 'abcd… (2 more characters)');
    assert.equal(truncated('abc', 4), 'abc');
  });
});

/** At compile time: what the page reads is what the runner's views send (src/api/views.ts). */
type Expect<T extends true> = T;
export type PageReadsTheViews = [
  Expect<ReturnType<typeof fullView> extends PageTask ? true : false>,
  Expect<ReturnType<typeof machineView> extends PageMachine ? true : false>,
  Expect<[PageState] extends [TaskState] ? ([TaskState] extends [PageState] ? true : false) : false>,
];

describe('the Cockpit page and the runner agree', () => {
  it('on task states, exit codes, task ids and the socket', () => {
    assert.deepEqual(PAGE_STATES, TASK_STATES);
    assert.deepEqual(
      Object.keys(EXIT_MEANINGS)
        .map(Number)
        .sort((a, b) => a - b),
      Object.values(ExitCode).sort((a, b) => a - b),
    );
    assert.equal(TASK_ID.source, TASK_ID_PATTERN.source);
    assert.equal(DEFAULT_SOCKET, PACKAGE_API_SOCKET);
    const manifest = JSON.parse(readFileSync(new URL('../../src/cockpit/manifest.json', import.meta.url), 'utf8'));
    assert.equal(manifest.config.socket, PACKAGE_API_SOCKET);
  });
});
