/**
 * How a follow stream passes on systemd's lines (TaskLogs): against a journal of two files as
 * journalctl merges them, played by test/fixtures/fake-journalctl.mjs. journald itself cannot be made
 * to show the case on demand (integration tests: test/integration/logs.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { JournalctlError, runningReaders } from '../../src/journal/reader.js';
import { fieldText, TaskLogs, type LogEvent } from '../../src/tasks/logs.js';
import type { TaskRecord } from '../../src/tasks/model.js';
import type { TaskService } from '../../src/tasks/service.js';
import { endFakes, fakeJournalctl } from '../harness/fake-journalctl.js';
import { finishedTask, runningTask } from '../harness/task-records.js';

const LIMIT = { timeout: 10_000 };
const TASK_ID = 'abcd1234';
const UNIT = `tessia-task-${TASK_ID}.service`;

let directory: string;
before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-task-logs-test-'));
});
after(() => {
  endFakes();
  rmSync(directory, { recursive: true, force: true });
});

/** An entry as journalctl --output=json prints it: the task's (in the tasks' journal) or PID 1's. */
function line(n: number, source: 'task' | 'systemd', message: string): string {
  const seqnumId = source === 'task' ? '1'.repeat(32) : '2'.repeat(32);
  const fields = source === 'task' ? { TESSIA_TASK_ID: TASK_ID, _SYSTEMD_UNIT: UNIT, _NAMESPACE: 'tessia' } : { UNIT, _PID: '1' };
  return `${JSON.stringify({
    __CURSOR: `s=${seqnumId};i=${n};b=${'3'.repeat(32)};m=${n};t=${n};x=${n}`,
    __REALTIME_TIMESTAMP: String(1767323045000000 + n),
    __MONOTONIC_TIMESTAMP: String(1000 + n),
    _BOOT_ID: '3'.repeat(32),
    MESSAGE: message,
    ...fields,
  })}\n`;
}

const running = runningTask({ taskId: TASK_ID, unit: UNIT, invocationId: null });
const exited = finishedTask({ taskId: TASK_ID, unit: UNIT, invocationId: null });

/** The two calls TaskLogs makes of the tasks: the record now, and when it has finished. */
function tasksThatFinish(finished: Promise<void>): TaskService {
  let task: TaskRecord = running;
  void finished.then(() => {
    task = exited;
  });
  const tasks: Pick<TaskService, 'get' | 'whenFinished'> = {
    get: () => task,
    whenFinished: async () => {
      await finished;
      return exited;
    },
  };
  return tasks as TaskService;
}

/**
 * Follows the task to its end line; the task finishes once `finishWhen` holds of the messages so far
 * (or, given none, once the follower has printed).
 */
async function follow(
  journal: string[],
  followed: string[],
  finishWhen: ((messages: string[]) => boolean) | undefined,
  request: { tail?: number } = {},
): Promise<{ messages: string[]; reads: number }> {
  const fake = fakeJournalctl(directory, { journal, followed });
  let finish = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const logs = new TaskLogs(tasksThatFinish(finished), { settleMs: 100, journalctl: fake.path }, pino({ level: 'silent' }));
  const messages: string[] = [];
  const events: AsyncIterable<LogEvent> = await logs.open({ taskId: TASK_ID, follow: true, ...request }, AbortSignal.timeout(8000));
  // Finishes once the follower has shown what it shows: a stream never ends before its task does.
  const timer = setInterval(() => {
    if (finishWhen ? finishWhen(messages) : fake.followerPrinted()) finish();
  }, 20);
  try {
    for await (const event of events) {
      if (event.type === 'end') messages.push(`end: ${event.task.state}`);
      else messages.push(...event.entries.map((entry) => fieldText(entry.fields['MESSAGE']) ?? ''));
    }
  } finally {
    clearInterval(timer);
  }
  assert.equal(runningReaders(), 0, 'a journalctl child outlived the stream');
  return { messages, reads: fake.runs().length };
}

describe('TaskLogs following two journals', () => {
  it(
    "streams a task line that the follower passed over (stamped before systemd's line about the end, written after it), in the journal's order.",
    LIMIT,
    async () => {
      const started = line(1, 'systemd', 'Started');
      const first = line(2, 'task', 'first');
      const last = line(3, 'task', 'last');
      const deactivated = line(4, 'systemd', 'Deactivated successfully.');
      // journalctl --follow showed "Deactivated" before "last" was in its file: it never goes back for it.
      const { messages } = await follow([started, first, last, deactivated], [started, first, deactivated], (seen) =>
        seen.includes('first'),
      );
      assert.deepEqual(messages, ['Started', 'first', 'last', 'Deactivated successfully.', 'end: exited']);
    },
  );

  it('streams a task line passed over before a held systemd line, once the next task line is read.', LIMIT, async () => {
    const early = line(1, 'task', 'early');
    const started = line(2, 'systemd', 'Started');
    const next = line(3, 'task', 'next');
    // The follower showed "Started" before "early", stamped earlier, was in its file.
    const { messages, reads } = await follow([early, started, next], [started, next], (seen) => seen.includes('next'));
    assert.deepEqual(messages, ['early', 'Started', 'next', 'end: exited']);
    assert.equal(reads, 3, 'the follower, the reading again, the drain');
  });

  it('reads again after the last line passed on, mid-stream.', LIMIT, async () => {
    const first = line(1, 'task', 'first');
    const passedOver = line(2, 'task', 'passed over');
    const notice = line(3, 'systemd', 'notice');
    const next = line(4, 'task', 'next');
    const { messages, reads } = await follow([first, passedOver, notice, next], [first, notice, next], (seen) => seen.includes('next'));
    assert.deepEqual(messages, ['first', 'passed over', 'notice', 'next', 'end: exited']);
    assert.equal(reads, 3, 'the follower, the reading again, the drain');
  });

  it('reads nothing again when no systemd line is among what the follower read.', LIMIT, async () => {
    const lines = [line(1, 'task', 'one'), line(2, 'task', 'two')];
    const { messages, reads } = await follow(lines, lines, (seen) => seen.includes('two'));
    assert.deepEqual(messages, ['one', 'two', 'end: exited']);
    assert.equal(reads, 2, 'the follower and the drain');
  });

  it('reads again at most once a second: a second stretch within it is passed on as the follower read it.', LIMIT, async () => {
    const early = line(1, 'task', 'early');
    const started = line(2, 'systemd', 'Started');
    const first = line(3, 'task', 'first');
    const passedOver = line(4, 'task', 'passed over');
    const notice = line(5, 'systemd', 'notice');
    const second = line(6, 'task', 'second');
    const { messages, reads } = await follow(
      [early, started, first, passedOver, notice, second],
      [started, first, notice, second],
      (seen) => seen.includes('second'),
    );
    assert.equal(reads, 3, 'the follower, one reading again, the drain');
    assert.deepEqual(messages, ['early', 'Started', 'first', 'notice', 'second', 'end: exited']);
  });

  it(
    "reads again from the first held line with tail= and nothing passed on yet (the journal's last lines have moved on).",
    LIMIT,
    async () => {
      const lines = [line(1, 'systemd', 'Started'), line(2, 'task', 'first'), line(3, 'task', 'second'), line(4, 'task', 'third')];
      // The follower began with the last three ("Started" to "second"), then "third"; read again, the last three start at "first".
      const { messages } = await follow(lines, lines, (seen) => seen.includes('third'), { tail: 3 });
      assert.deepEqual(messages, ['Started', 'first', 'second', 'third', 'end: exited']);
    },
  );

  it('sends the systemd lines still held at the end (tail=0 and a task that printed nothing), from the first of them.', LIMIT, async () => {
    const lines = [
      line(1, 'task', 'before the stream'),
      line(2, 'systemd', 'Main process exited'),
      line(3, 'systemd', 'Deactivated successfully.'),
    ];
    const { messages } = await follow(lines, lines.slice(1), undefined, { tail: 0 });
    assert.deepEqual(messages, ['Main process exited', 'Deactivated successfully.', 'end: exited']);
  });
});

describe('TaskLogs resuming after a cursor', () => {
  const cursor = `s=${'1'.repeat(32)};i=1;b=${'3'.repeat(32)};m=1;t=1;x=1`;
  const logsWith = (journalctl: string) =>
    new TaskLogs(tasksThatFinish(new Promise(() => {})), { settleMs: 100, journalctl }, pino({ level: 'silent' }));

  for (const [when, warnings] of [
    ['', 0],
    [', after more than 4 KiB of warnings about journal files', 200],
  ] as const) {
    it(`refuses a cursor journalctl refuses as INVALID_CURSOR${when}.`, LIMIT, async () => {
      const warning = { stderr: 'Journal file /var/log/journal/x/system@1.journal corrupted, ignoring file.\n' };
      const steps = [...Array.from({ length: warnings }, () => warning), { stderr: 'Failed to seek to cursor: Invalid argument\n' }];
      const fake = fakeJournalctl(directory, { steps, exitCode: 1 });
      await assert.rejects(logsWith(fake.path).open({ taskId: TASK_ID, follow: false, afterCursor: cursor }, AbortSignal.timeout(8000)), {
        code: 'INVALID_CURSOR',
      });
    });
  }

  it('does not blame the cursor when journalctl cannot be run at all.', LIMIT, async () => {
    await assert.rejects(
      logsWith(join(directory, 'no-such-journalctl')).open(
        { taskId: TASK_ID, follow: false, afterCursor: cursor },
        AbortSignal.timeout(8000),
      ),
      (error: unknown) => {
        assert.ok(error instanceof JournalctlError, `expected a JournalctlError, got ${String(error)}`);
        assert.equal(error.exitCode, null);
        return true;
      },
    );
  });
});
