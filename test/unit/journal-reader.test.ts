import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { JournalEntry } from '../../src/journal/entry.js';
import { journalctlArgs, type JournalQuery } from '../../src/journal/query.js';
import { JournalctlError, readJournal, runningReaders } from '../../src/journal/reader.js';
import { endFakes, fakeJournalctl as fakeIn, type Scenario } from '../harness/fake-journalctl.js';

const QUERY: JournalQuery = { matches: [[['TESSIA_TASK_ID', 'abcd1234']]] };
/** Every test ends long before this; a hang fails instead of blocking the run. */
const LIMIT = { timeout: 5_000 };

let directory: string;
/** A fake in this file's directory. */
const fakeJournalctl = (scenario: Scenario) => fakeIn(directory, scenario);

const SEQNUM_ID = '0123456789abcdef0123456789abcdef';
const BOOT_ID = 'fedcba9876543210fedcba9876543210';

/** A journalctl --output=json line; `n` makes the cursor (and timestamps) distinct. */
/**
 * Entries 1 and 3 around `huge` (300 kB: more than one pipe read, so the reader sees the line's start
 * without its end), read with maxLineBytes 1024: what came out, and why lines were skipped.
 */
async function readAroundHugeLine(huge: string): Promise<{ entries: JournalEntry[]; skipped: string[] }> {
  const fake = fakeJournalctl({
    steps: [{ stdout: `${entryLine(1)}\n` }, { stdout: `${huge}\n` }, { stdout: `${entryLine(3)}\n` }],
  });
  const skipped: string[] = [];
  const reader = readJournal(QUERY, { journalctl: fake.path, maxLineBytes: 1024, onSkippedLine: (why) => void skipped.push(why) });
  return { entries: (await collect(reader)).flat(), skipped };
}

function entryLine(n: number, extra: Record<string, unknown> = {}): string {
  const hex = n.toString(16);
  return JSON.stringify({
    __CURSOR: `s=${SEQNUM_ID};i=${hex};b=${BOOT_ID};m=${hex};t=62b1c2d3e4f5${hex};x=9f8e${hex}`,
    __REALTIME_TIMESTAMP: String(1767323045000000 + n),
    __MONOTONIC_TIMESTAMP: String(1000 + n),
    PRIORITY: '6',
    TESSIA_TASK_ID: 'abcd1234',
    MESSAGE: `line ${n}`,
    ...extra,
  });
}

const cursorOf = (n: number) => (JSON.parse(entryLine(n)) as { __CURSOR: string }).__CURSOR;
const messages = (entries: JournalEntry[]) => entries.map((entry) => entry.fields['MESSAGE']);

async function collect(reader: AsyncIterable<JournalEntry[]>): Promise<JournalEntry[][]> {
  const batches: JournalEntry[][] = [];
  for await (const batch of reader) batches.push(batch);
  return batches;
}

/** The next batch; fails if the reader ended instead. */
async function nextBatch(reader: AsyncGenerator<JournalEntry[]>): Promise<JournalEntry[]> {
  const next = await reader.next();
  assert.equal(next.done, false, 'expected another batch, the reader ended');
  return next.value;
}

function assertGone(pid: number): void {
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is still alive`);
}

function assertNoReaderLeft(): void {
  assert.equal(runningReaders(), 0, 'a journalctl child outlived its reader');
}

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'tessia-journal-reader-test-'));
});

after(() => {
  endFakes();
  rmSync(directory, { recursive: true, force: true });
});

describe('readJournal output', () => {
  afterEach(assertNoReaderLeft);

  it('yields the entries of each chunk of journalctl output as one batch.', LIMIT, async () => {
    const fake = fakeJournalctl({
      steps: [{ stdout: `${entryLine(1)}\n${entryLine(2)}\n` }, { waitForSignal: true }, { stdout: `${entryLine(3)}\n` }],
    });
    const reader = readJournal(QUERY, { journalctl: fake.path });
    const first = await nextBatch(reader);
    assert.equal(first.length, 2);
    assert.deepEqual(messages(first), ['line 1', 'line 2']);
    fake.proceed();
    const second = await nextBatch(reader);
    assert.equal(second.length, 1);
    assert.deepEqual(messages(second), ['line 3']);
    assert.equal((await reader.next()).done, true);
  });

  it('resumes after a cursor by reading from it inclusively and dropping that entry alone.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n${entryLine(2)}\n${entryLine(3)}\n` }] });
    const entries = (await collect(readJournal({ ...QUERY, afterCursor: cursorOf(1) }, { journalctl: fake.path }))).flat();
    assert.ok(fake.record().argv.includes(`--cursor=${cursorOf(1)}`), 'inclusive: journalctl 252 --after-cursor= skips one entry blindly');
    assert.deepEqual(
      entries.map((entry) => entry.cursor),
      [cursorOf(2), cursorOf(3)],
    );
  });

  it('keeps every entry when the after cursor is not the first one read (another task’s, or rotated away).', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(2)}\n${entryLine(3)}\n` }] });
    const entries = (await collect(readJournal({ ...QUERY, afterCursor: cursorOf(1) }, { journalctl: fake.path }))).flat();
    assert.deepEqual(
      entries.map((entry) => entry.cursor),
      [cursorOf(2), cursorOf(3)],
      'the first entry after a foreign cursor is kept',
    );
  });

  it('parses a line into an entry with its cursor, bigint timestamps and fields.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(7, { CODE_LINE: '12' })}\n` }] });
    const entries = (await collect(readJournal(QUERY, { journalctl: fake.path }))).flat();
    assert.equal(entries.length, 1);
    const [entry] = entries;
    assert.ok(entry);
    // The address fields stay in `fields` as undefined keys (parseJournalLine): compare what has a value.
    const valued = Object.fromEntries(Object.entries(entry.fields).filter(([, value]) => value !== undefined));
    assert.deepEqual(
      { ...entry, fields: valued },
      {
        cursor: cursorOf(7),
        realtime: 1767323045000007n,
        monotonic: 1007n,
        fields: { PRIORITY: '6', TESSIA_TASK_ID: 'abcd1234', MESSAGE: 'line 7', CODE_LINE: '12' },
      },
    );
  });

  it("runs the program with the argument list of the query, without colours, a pager or the runner's own stdbuf.", LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [] });
    const query: JournalQuery = { ...QUERY, afterCursor: cursorOf(1), tail: 5, maxPriority: 4 };
    // As a runner started under `stdbuf -oL` would have it: journalctl is not to buffer by line.
    const previous = process.env['_STDBUF_O'];
    process.env['_STDBUF_O'] = 'L';
    const batches = await collect(readJournal(query, { journalctl: fake.path })).finally(() => {
      if (previous === undefined) delete process.env['_STDBUF_O'];
      else process.env['_STDBUF_O'] = previous;
    });
    assert.equal(batches.length, 0);
    const record = fake.record();
    assert.deepEqual(record.argv, journalctlArgs(query));
    assert.ok(record.argv.includes('--output=json'));
    assert.deepEqual(record.env, { SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', LC_ALL: 'C.UTF-8', _STDBUF_O: null });
  });

  it('keeps a partial last line of one chunk and completes it with the next chunk.', LIMIT, async () => {
    const split = entryLine(2, { MESSAGE: 'split across two chunks' });
    const half = Math.floor(split.length / 2);
    const fake = fakeJournalctl({
      steps: [
        { stdout: `${entryLine(1)}\n${split.slice(0, half)}` },
        { waitForSignal: true },
        { stdout: `${split.slice(half)}\n${entryLine(3)}\n` },
      ],
    });
    const skipped: string[] = [];
    const reader = readJournal(QUERY, { journalctl: fake.path, onSkippedLine: (why) => skipped.push(why) });
    const first = await nextBatch(reader);
    assert.equal(first.length, 1);
    assert.deepEqual(messages(first), ['line 1']);
    fake.proceed();
    const second = await nextBatch(reader);
    assert.equal(second.length, 2);
    assert.equal(second[0]?.cursor, cursorOf(2));
    assert.deepEqual(messages(second), ['split across two chunks', 'line 3']);
    assert.equal((await reader.next()).done, true);
    assert.deepEqual(skipped, []);
  });

  it('yields nothing for an unterminated last line when journalctl ends, only the entries before it.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n${entryLine(2).slice(0, 40)}` }] });
    const entries = (await collect(readJournal(QUERY, { journalctl: fake.path }))).flat();
    assert.equal(entries.length, 1);
    assert.deepEqual(messages(entries), ['line 1']);
  });

  it('skips a line that is not JSON and reports it through onSkippedLine.', LIMIT, async () => {
    const fake = fakeJournalctl({
      steps: [{ stdout: `${entryLine(1)}\nHint: You are not seeing messages from other users.\n${entryLine(2)}\n` }],
    });
    const skipped: string[] = [];
    const reader = readJournal(QUERY, { journalctl: fake.path, onSkippedLine: (why) => skipped.push(why) });
    const entries = (await collect(reader)).flat();
    assert.equal(entries.length, 2);
    assert.deepEqual(messages(entries), ['line 1', 'line 2']);
    assert.deepEqual(skipped, ['not a journal entry']);
  });

  it('skips a JSON line without a cursor and reports it through onSkippedLine.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `{"MESSAGE":"no cursor"}\n${entryLine(1)}\n` }] });
    const skipped: string[] = [];
    const reader = readJournal(QUERY, { journalctl: fake.path, onSkippedLine: (why) => skipped.push(why) });
    const entries = (await collect(reader)).flat();
    assert.equal(entries.length, 1);
    assert.deepEqual(messages(entries), ['line 1']);
    assert.equal(skipped.length, 1);
  });

  it('replaces a line over maxLineBytes by a placeholder entry with its cursor, and goes on after it.', LIMIT, async () => {
    const { entries, skipped } = await readAroundHugeLine(entryLine(2, { MESSAGE: 'x'.repeat(300_000) }));
    assert.equal(entries.length, 3);
    assert.deepEqual(
      entries.map((entry) => entry.cursor),
      [cursorOf(1), cursorOf(2), cursorOf(3)],
    );
    const placeholder = entries[1];
    assert.ok(placeholder);
    assert.equal(placeholder.fields['TESSIA_TRUNCATED'], '1');
    const message = placeholder.fields['MESSAGE'];
    assert.equal(typeof message, 'string');
    assert.match(message as string, /left out/);
    assert.ok(!(message as string).includes('xxxx'), 'the placeholder carries none of the content');
    assert.deepEqual(messages([entries[0]!, entries[2]!]), ['line 1', 'line 3']);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0] ?? '', /over 1024 bytes/);
  });

  it('finds the cursor of a huge line wherever journalctl printed it, after its first maxLineBytes too.', LIMIT, async () => {
    const { __CURSOR: cursor, ...rest } = JSON.parse(entryLine(2)) as Record<string, string>;
    // journalctl prints fields in no fixed order: here the cursor comes last, 300 kB in.
    const { entries } = await readAroundHugeLine(JSON.stringify({ ...rest, MESSAGE: 'x'.repeat(300_000), __CURSOR: cursor }));
    assert.deepEqual(
      entries.map((entry) => entry.cursor),
      [cursorOf(1), cursorOf(2), cursorOf(3)],
    );
    const placeholder = entries[1];
    assert.ok(placeholder);
    assert.equal(placeholder.fields['TESSIA_TRUNCATED'], '1');
    assert.equal(Object.getPrototypeOf(placeholder.fields), null, 'fields without a prototype, as every entry has them');
  });

  it('reports a huge line without a cursor and yields no placeholder for it.', LIMIT, async () => {
    const { entries, skipped } = await readAroundHugeLine('y'.repeat(300_000));
    assert.equal(entries.length, 2);
    assert.deepEqual(messages(entries), ['line 1', 'line 3']);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0] ?? '', /over 1024 bytes/);
  });
});

describe('readJournal failures', () => {
  afterEach(assertNoReaderLeft);

  it('throws a JournalctlError with the exit status and stderr when journalctl fails.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stderr: 'Failed to seek to cursor: Invalid argument\n' }], exitCode: 1 });
    await assert.rejects(collect(readJournal(QUERY, { journalctl: fake.path })), (error: unknown) => {
      assert.ok(error instanceof JournalctlError, `expected a JournalctlError, got ${String(error)}`);
      assert.equal(error.exitCode, 1);
      assert.equal(error.stderr, 'Failed to seek to cursor: Invalid argument\n');
      assert.match(error.message, /exit 1/);
      assert.match(error.message, /Failed to seek to cursor: Invalid argument/);
      return true;
    });
  });

  it('keeps the end of a long stderr, where journalctl says why it failed, after its warnings.', LIMIT, async () => {
    const warnings = Array.from(
      { length: 200 },
      (_, i) => `Journal file /var/log/journal/x/system@${i}.journal corrupted, ignoring file.\n`,
    );
    const fake = fakeJournalctl({
      steps: [...warnings.map((stderr) => ({ stderr })), { stderr: 'Failed to seek to cursor: Invalid argument\n' }],
      exitCode: 1,
    });
    await assert.rejects(collect(readJournal(QUERY, { journalctl: fake.path })), (error: unknown) => {
      assert.ok(error instanceof JournalctlError, `expected a JournalctlError, got ${String(error)}`);
      assert.ok(warnings.join('').length > 2 * 4096, 'more than is kept');
      assert.ok(error.stderr.length <= 4097, `${error.stderr.length} characters kept`);
      assert.match(error.stderr, /^…Journal file \S+ corrupted, ignoring file\.\n/, 'from the first whole line kept');
      assert.ok(error.stderr.endsWith('corrupted, ignoring file.\nFailed to seek to cursor: Invalid argument\n'), error.stderr.slice(-200));
      return true;
    });
  });

  it('yields the entries read before journalctl failed, then throws.', LIMIT, async () => {
    const fake = fakeJournalctl({
      steps: [{ stdout: `${entryLine(1)}\n` }, { stderr: 'journal file corrupted\n' }],
      exitCode: 2,
    });
    const reader = readJournal(QUERY, { journalctl: fake.path });
    const first = await nextBatch(reader);
    assert.equal(first.length, 1);
    await assert.rejects(reader.next(), (error: unknown) => error instanceof JournalctlError && error.exitCode === 2);
  });

  it('does not fail when journalctl succeeds with something on stderr.', LIMIT, async () => {
    const fake = fakeJournalctl({
      steps: [{ stderr: 'No journal files were found.\n' }, { stdout: `${entryLine(1)}\n` }],
    });
    const entries = (await collect(readJournal(QUERY, { journalctl: fake.path }))).flat();
    assert.equal(entries.length, 1);
  });
});

describe('readJournal cancellation', () => {
  afterEach(assertNoReaderLeft);

  it('kills a following journalctl when the signal aborts, and then ends without an error.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n` }], block: true });
    const controller = new AbortController();
    const reader = readJournal({ ...QUERY, follow: true }, { journalctl: fake.path, signal: controller.signal });
    const first = await nextBatch(reader);
    assert.equal(first.length, 1);
    assert.equal(runningReaders(), 1);
    const { pid } = fake.record();
    controller.abort();
    assert.equal((await reader.next()).done, true);
    assertGone(pid);
    assert.equal(runningReaders(), 0);
  });

  it('yields nothing and fails nothing for a signal aborted before the start.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n` }], block: true });
    const reader = readJournal({ ...QUERY, follow: true }, { journalctl: fake.path, signal: AbortSignal.abort() });
    const batches = await collect(reader);
    assert.equal(batches.length, 0);
    assert.equal(runningReaders(), 0);
  });

  it('leaves no journalctl behind when the consumer breaks out of for-await.', LIMIT, async () => {
    const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n${entryLine(2)}\n` }], block: true });
    let pid: number | undefined;
    let seen = 0;
    for await (const batch of readJournal({ ...QUERY, follow: true }, { journalctl: fake.path })) {
      seen += batch.length;
      pid = fake.record().pid;
      break;
    }
    assert.equal(seen, 2);
    assert.ok(pid !== undefined);
    assertGone(pid);
    assert.equal(runningReaders(), 0);
  });

  it('leaves no journalctl behind when the consumer stops while it is blocked on a full pipe.', LIMIT, async () => {
    // About 1.5 MB in one write: far more than a pipe holds, so the fake is still writing when the consumer stops.
    const lines = Array.from({ length: 10_000 }, (_, n) => `${entryLine(n + 1)}\n`).join('');
    const fake = fakeJournalctl({ steps: [{ stdout: lines }] });
    const reader = readJournal(QUERY, { journalctl: fake.path });
    const first = await nextBatch(reader);
    assert.ok(first.length > 0 && first.length < 10_000, `expected part of the output, got ${first.length} entries`);
    const { pid } = fake.record();
    assert.equal((await reader.return(undefined)).done, true);
    assertGone(pid);
    assert.equal(runningReaders(), 0);
  });
});

describe('readJournal under stdbuf', () => {
  const stdbuf = '/usr/bin/stdbuf';
  it(
    "runs journalctl under the stdbuf it is given, with a 64 KiB output buffer and the query's argument list.",
    { ...LIMIT, skip: existsSync(stdbuf) ? false : 'no /usr/bin/stdbuf here' },
    async () => {
      const fake = fakeJournalctl({ steps: [{ stdout: `${entryLine(1)}\n${entryLine(2)}\n` }] });
      const entries = (await collect(readJournal(QUERY, { journalctl: fake.path, stdbuf }))).flat();
      assert.deepEqual(messages(entries), ['line 1', 'line 2']);
      // stdbuf exec's journalctl: the program that ran is the fake itself, with the buffer stdbuf set.
      assert.equal(fake.record().env._STDBUF_O, '65536');
      assert.deepEqual(fake.record().argv, journalctlArgs(QUERY));
      assert.equal(fake.runs().length, 1);
    },
  );
});

describe('readJournal without a program to run', () => {
  it('throws a JournalctlError without an exit status when journalctl cannot be run.', LIMIT, async () => {
    const missing = join(directory, 'no-such-journalctl');
    await assert.rejects(collect(readJournal(QUERY, { journalctl: missing })), (error: unknown) => {
      assert.ok(error instanceof JournalctlError, `expected a JournalctlError, got ${String(error)}`);
      assert.equal(error.exitCode, null);
      assert.match(error.message, /cannot run journalctl/);
      return true;
    });
  });

  it('counts no running reader once a reader that could not start has thrown.', LIMIT, async () => {
    const reader = readJournal(QUERY, { journalctl: join(directory, 'no-such-journalctl') });
    await assert.rejects(collect(reader), JournalctlError);
    assert.equal(runningReaders(), 0);
  });
});
