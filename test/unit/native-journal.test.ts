import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { journalFieldName, serializeEntry, serializeWithin } from '../../src/journal/native-entry.js';
import { openNativeJournal, type NativeJournal, type NativeJournalOptions } from '../../src/journal/native.js';
import { skipUnlessInstalled, skipUnlessNativeJournal } from '../harness/requirements.js';
import { parseDatagram } from '../harness/journal-datagram.js';
import { Receiver } from '../harness/datagram-receiver.js';

const NATIVE_JS = fileURLToPath(new URL('../../src/journal/native.ts', import.meta.url));
const LIMIT = { timeout: 20_000 };

describe('serializeEntry', () => {
  it('writes single-line values as NAME=value lines', () => {
    assert.equal(serializeEntry({ MESSAGE: 'hello world', PRIORITY: '4' }).toString('utf8'), 'MESSAGE=hello world\nPRIORITY=4\n');
  });

  it('writes a value with a newline in the binary form: name, 64-bit little-endian byte length, bytes', () => {
    const value = 'é\nü';
    const expected = Buffer.concat([
      Buffer.from('MESSAGE\n'),
      Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), // 5 UTF-8 bytes, not 3 characters
      Buffer.from(value, 'utf8'),
      Buffer.from('\nPRIORITY=6\n'),
    ]);
    assert.deepEqual(serializeEntry({ MESSAGE: value, PRIORITY: '6' }), expected);
    assert.deepEqual(parseDatagram(expected), { MESSAGE: value, PRIORITY: '6' });
  });

  it('keeps an empty value and "=" inside a value', () => {
    assert.deepEqual(parseDatagram(serializeEntry({ EMPTY: '', EQUATION: 'a=b' })), { EMPTY: '', EQUATION: 'a=b' });
  });
});

describe('journalFieldName', () => {
  it('makes names journald accepts: upper case, digits and "_", not starting with "_" or a digit, at most 64 characters', () => {
    assert.equal(journalFieldName('diskUsed'), 'DISKUSED');
    assert.equal(journalFieldName('used-percent.max'), 'USED_PERCENT_MAX');
    assert.equal(journalFieldName('_PID'), 'PID', 'fields starting with "_" are journald\'s own');
    assert.equal(journalFieldName('2nd'), 'ND');
    assert.equal(journalFieldName('x'.repeat(100)), 'X'.repeat(64));
    assert.equal(journalFieldName('__'), 'FIELD');
    assert.equal(journalFieldName('ü'), 'FIELD');
  });
});

describe('serializeWithin (entries larger than a datagram)', () => {
  const others = { PRIORITY: '3', SYSLOG_IDENTIFIER: 'tessia-echo', DISK: '/dev/sda' };

  it('leaves an entry that fits as it is', () => {
    const fields = { MESSAGE: 'short', ...others };
    assert.deepEqual(serializeWithin(fields, 1000), serializeEntry(fields));
  });

  it('cuts MESSAGE to fit, says so at its end and in TESSIA_TRUNCATED, and keeps every other field whole', () => {
    const message = 'x'.repeat(300_000);
    const datagram = serializeWithin({ MESSAGE: message, ...others }, 200_000);
    assert.ok(datagram.length <= 200_000, `${datagram.length} bytes`);
    assert.ok(datagram.length > 199_000, 'no more is cut than needed');
    const fields = parseDatagram(datagram);
    assert.deepEqual({ ...fields, MESSAGE: undefined }, { MESSAGE: undefined, ...others, TESSIA_TRUNCATED: 'MESSAGE' });
    const marker = /\n\[truncated by tessia: (\d+) of 300000 bytes kept\]$/.exec(fields['MESSAGE'] ?? '');
    assert.ok(marker, fields['MESSAGE']?.slice(-100));
    assert.equal(fields['MESSAGE']?.slice(0, Number(marker[1])), message.slice(0, Number(marker[1])));
  });

  it('cuts at a character boundary, so the kept text is valid UTF-8', () => {
    const datagram = serializeWithin({ MESSAGE: '€'.repeat(100_000), ...others }, 100_001);
    assert.ok(datagram.length <= 100_001);
    const message = parseDatagram(datagram)['MESSAGE'] ?? '';
    assert.ok(!message.includes('\uFFFD'), 'no broken character');
    assert.match(message, /^€+\n\[truncated by tessia: \d+ of 300000 bytes kept\]$/);
  });

  it('cuts the largest value first, whichever field it is', () => {
    const fields = parseDatagram(serializeWithin({ MESSAGE: 'kept', BIG: 'y'.repeat(50_000), ...others }, 10_000));
    assert.equal(fields['MESSAGE'], 'kept');
    assert.equal(fields['TESSIA_TRUNCATED'], 'BIG');
    assert.match(fields['BIG'] ?? '', /^y+\n\[truncated by tessia: \d+ of 50000 bytes kept\]$/);
  });

  it('replaces an entry that cannot fit even with its values cut by a short one saying so', () => {
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`FIELD_${i}`, 'v']));
    const datagram = serializeWithin({ MESSAGE: 'm', ...others, ...many }, 1000);
    assert.ok(datagram.length <= 1000);
    const fields = parseDatagram(datagram);
    assert.match(fields['MESSAGE'] ?? '', /an entry of \d+ bytes with 204 fields, too large for one datagram, left out/);
    assert.equal(fields['PRIORITY'], '3');
    assert.equal(fields['SYSLOG_IDENTIFIER'], 'tessia-echo');
  });
});

const skipWriter =
  skipUnlessNativeJournal('the native journal writer tests') ||
  skipUnlessInstalled(['python3'], 'the native journal writer tests need python3 for their receiver: apt-get install python3');

describe('the native journal writer', { skip: skipWriter }, () => {
  let directory: string;
  let socketPath: string;
  const receivers: Receiver[] = [];
  const journals: NativeJournal[] = [];

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-native-'));
  });
  after(async () => {
    for (const journal of journals) journal.close();
    for (const receiver of receivers) await receiver.close();
    rmSync(directory, { recursive: true, force: true });
  });

  let count = 0;
  async function receiverAndJournal(options: NativeJournalOptions = {}) {
    socketPath = join(directory, `socket-${++count}`);
    const receiver = await Receiver.bind(socketPath);
    receivers.push(receiver);
    const journal = open({ ...options, socketPath });
    return { receiver, journal };
  }
  function open(options: NativeJournalOptions): NativeJournal {
    const journal = openNativeJournal({}, options);
    assert.ok(journal, 'the addon loads');
    journals.push(journal);
    return journal;
  }
  const entry = (i: number) => ({ MESSAGE: `entry ${i}`, PRIORITY: '6', SYSLOG_IDENTIFIER: 'test', PADDING: 'p'.repeat(200) });
  const messages = (datagrams: Record<string, string>[]) => datagrams.map((fields) => fields['MESSAGE']);
  const sequence = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `entry ${from + i}`);

  it('loses no entry while the receiver lags: it waits on congestion and sends the rest in order', LIMIT, async () => {
    const { receiver, journal } = await receiverAndJournal();
    const sent = 3000; // far more than a receive queue holds (net.unix.max_dgram_qlen, 512 by default)
    for (let i = 0; i < sent; i++) journal.send(entry(i));
    assert.equal(await journal.flush(200), false, 'the receiver reads nothing yet: entries wait in the queue');
    const received = await receiver.read(sent);
    assert.equal(received.length, sent);
    assert.deepEqual(messages(received), sequence(0, sent));
    assert.equal(await journal.flush(2000), true);
    assert.deepEqual(await receiver.read(1, 0.2), [], 'nothing more: no entry twice');
  });

  it('drops the newest entries over its queue cap, and says how many in one warning entry once it drains', LIMIT, async () => {
    const { receiver, journal } = await receiverAndJournal({ maxQueuedBytes: 64 * 1024 });
    const sent = 3000;
    for (let i = 0; i < sent; i++) journal.send(entry(i));
    const received = await receiver.read(sent, 1);
    assert.ok(received.length < sent, `${received.length} received`);
    const report = received.at(-1) ?? {};
    const kept = received.slice(0, -1);
    assert.deepEqual(messages(kept), sequence(0, kept.length), 'the oldest entries, in order');
    assert.equal(report['PRIORITY'], '4');
    assert.equal(report['SYSLOG_IDENTIFIER'], 'test', 'the identifier of the dropped entries');
    assert.equal(report['TESSIA_DROPPED_ENTRIES'], String(sent - kept.length));
    assert.match(
      report['MESSAGE'] ?? '',
      new RegExp(`^${sent - kept.length} journal entries \\(\\d+ bytes\\) dropped: journald did not keep up`),
    );
    journal.send(entry(sent));
    assert.deepEqual(messages(await receiver.read(2, 1)), [`entry ${sent}`], 'later entries go through; one report only');
  });

  it('connects again when the receiver is replaced, as when journald restarts', LIMIT, async () => {
    const { receiver, journal } = await receiverAndJournal();
    for (let i = 0; i < 1000; i++) journal.send(entry(i));
    assert.equal(await journal.flush(200), false, 'congested');
    await receiver.close();
    rmSync(socketPath);
    journal.send(entry(1000));
    const replacement = await Receiver.bind(socketPath);
    receivers.push(replacement);
    for (let i = 1001; i < 1100; i++) journal.send(entry(i));
    // Longer than the writer's longest wait between tries (2 s): under load its tries back off that far.
    const received = messages(await replacement.read(1100, 3));
    // What the first receiver held died with it; the rest comes, in order and once each.
    assert.ok(received.length >= 100, `${received.length} received`);
    const first = Number(received[0]?.replace('entry ', ''));
    assert.deepEqual(received, sequence(first, 1100));
    assert.equal(await journal.flush(2000), true);
  });

  it('sends to a receiver that replaced the one its kept-open socket was connected to, losing nothing', LIMIT, async () => {
    const { receiver, journal } = await receiverAndJournal({ keepOpen: true });
    journal.send(entry(0));
    assert.deepEqual(messages(await receiver.read(1)), ['entry 0']);
    await sleep(20); // idle, the socket kept open on the old receiver
    await receiver.close();
    rmSync(socketPath);
    const replacement = await Receiver.bind(socketPath);
    receivers.push(replacement);
    for (let i = 1; i < 10; i++) journal.send(entry(i));
    assert.deepEqual(messages(await replacement.read(9)), sequence(1, 10));
    assert.equal(await journal.flush(2000), true);
  });

  it('keeps its socket open between entries for a service (keepOpen), and closes it after each burst otherwise', LIMIT, async () => {
    const sockets = () =>
      new Set(
        readdirSync('/proc/self/fd')
          .map((fd) => {
            try {
              return readlinkSync(`/proc/self/fd/${fd}`);
            } catch {
              return '';
            }
          })
          .filter((link) => link.startsWith('socket:')),
      );
    const opened = (before: Set<string>) => [...sockets()].filter((socket) => !before.has(socket));
    for (const keepOpen of [true, false]) {
      const { receiver, journal } = await receiverAndJournal({ keepOpen });
      const before = sockets();
      journal.send(entry(0));
      await sleep(20);
      const afterFirst = opened(before);
      journal.send(entry(1));
      await sleep(20);
      const afterSecond = opened(before);
      assert.deepEqual(messages(await receiver.read(2)), sequence(0, 2), `keepOpen ${keepOpen}: both entries arrive`);
      if (keepOpen) {
        assert.equal(afterFirst.length, 1, 'open after the first entry has left');
        assert.deepEqual(afterSecond, afterFirst, 'the same socket for the next entry');
      } else {
        assert.deepEqual([afterFirst, afterSecond], [[], []], 'closed in the turn after each entry left');
      }
      journal.close();
      assert.deepEqual(opened(before), [], `keepOpen ${keepOpen}: closed by close()`);
    }
  });

  it('keeps entries until the receiver exists, when it is not there yet', LIMIT, async () => {
    socketPath = join(directory, 'not-yet');
    const journal = open({ socketPath });
    for (let i = 0; i < 10; i++) journal.send(entry(i));
    assert.equal(await journal.flush(100), false);
    const receiver = await Receiver.bind(socketPath);
    receivers.push(receiver);
    assert.equal(await journal.flush(5000), true);
    assert.deepEqual(messages(await receiver.read(10)), sequence(0, 10));
  });

  it('sends an entry larger than a datagram cut to fit, with its other fields', LIMIT, async () => {
    const { receiver, journal } = await receiverAndJournal();
    const message = 'z'.repeat(1024 * 1024);
    journal.send({ MESSAGE: message, PRIORITY: '3', SYSLOG_IDENTIFIER: 'test', DISK: '/dev/sda' });
    journal.send(entry(1));
    const [large, next] = await receiver.read(2);
    assert.ok(large && next);
    assert.equal(large['DISK'], '/dev/sda');
    assert.equal(large['PRIORITY'], '3');
    assert.equal(large['TESSIA_TRUNCATED'], 'MESSAGE');
    const kept = /\n\[truncated by tessia: (\d+) of 1048576 bytes kept\]$/.exec(large['MESSAGE'] ?? '');
    assert.ok(kept, large['MESSAGE']?.slice(-80));
    assert.ok(Number(kept[1]) > 200_000, `${kept[1]} bytes kept: a datagram carries about 208 KiB`);
    assert.equal(next['MESSAGE'], 'entry 1');
  });

  it('resolves flush after its timeout when the receiver never reads', LIMIT, async () => {
    const { journal } = await receiverAndJournal();
    for (let i = 0; i < 2000; i++) journal.send(entry(i));
    const started = Date.now();
    assert.equal(await journal.flush(300), false);
    assert.ok(Date.now() - started < 1000);
  });

  it('never throws into the caller, whatever the socket says', LIMIT, () => {
    const journal = open({ socketPath: join(directory, 'nothing', 'here') });
    assert.doesNotThrow(() => journal.send(entry(0)));
    journal.close();
    assert.doesNotThrow(() => journal.send(entry(1)), 'not even after close');
  });

  describe('a process that only logs and returns', () => {
    /** Runs a script that sends `entries` entries and returns: `sent` once it has, `exited` with its exit code. */
    function runScript(path: string, entries: number): { sent: Promise<void>; exited: Promise<number | null> } {
      const script = join(directory, `logs-and-returns-${++count}.mts`);
      writeFileSync(
        script,
        `import { openNativeJournal } from ${JSON.stringify(NATIVE_JS)};
const journal = openNativeJournal({}, { socketPath: ${JSON.stringify(path)} });
if (!journal) process.exit(3);
for (let i = 0; i < ${entries}; i++) journal.send({ MESSAGE: 'entry ' + i, PRIORITY: '6', SYSLOG_IDENTIFIER: 'test', PADDING: 'p'.repeat(200) });
process.stdout.write('sent\\n');
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      // A process that does not exit is the defect: kill it (by its own pid) so the test reports it.
      const kill = setTimeout(() => child.kill('SIGKILL'), 8000);
      const exited = new Promise<number | null>((resolve) =>
        child.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code);
        }),
      );
      const sent = new Promise<void>((resolve) => child.stdout.on('data', (chunk: Buffer) => chunk.includes('sent') && resolve()));
      return { sent, exited };
    }

    it('exits once its entries are sent', LIMIT, async () => {
      const { receiver } = await receiverAndJournal();
      const reading = receiver.read(5);
      assert.equal(await runScript(socketPath, 5).exited, 0, 'exited by itself, not killed');
      assert.deepEqual(messages(await reading), sequence(0, 5));
    });

    it('exits once a lagging receiver has taken everything', LIMIT, async () => {
      const { receiver } = await receiverAndJournal();
      const script = runScript(socketPath, 2000);
      await script.sent; // 2000 entries do not fit in the receive queue: the rest wait in the process
      const received = await receiver.read(2000);
      assert.equal(await script.exited, 0);
      assert.deepEqual(messages(received), sequence(0, 2000));
    });

    it('exits when there is no receiver at all', LIMIT, async () => {
      assert.equal(await runScript(join(directory, 'no-journald'), 5).exited, 0);
    });
  });
});
