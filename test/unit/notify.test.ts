import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createNotifier } from '../../src/systemd/notify.js';
import { Receiver } from '../harness/datagram-receiver.js';
import { skipUnlessInstalled, skipUnlessNativeJournal } from '../harness/requirements.js';

const skip =
  skipUnlessNativeJournal('the sd_notify datagram tests') ||
  skipUnlessInstalled(
    ['python3', 'systemd-notify'],
    'the sd_notify tests need python3 and systemd-notify: apt-get install python3 systemd',
  );

/** `PATH` without systemd-notify while `work` runs: a fallback to it fails with ENOENT. */
async function withoutSystemdNotify<T>(work: () => Promise<T>): Promise<T> {
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    return await work();
  } finally {
    process.env['PATH'] = path;
  }
}

describe('sd_notify', { skip }, () => {
  let directory: string;
  const receivers: Receiver[] = [];
  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-notify-'));
  });
  after(async () => {
    for (const receiver of receivers) await receiver.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('sends one datagram of its own to $NOTIFY_SOCKET, one assignment a line, no process started', async () => {
    const path = join(directory, 'notify');
    const receiver = await Receiver.bind(path);
    receivers.push(receiver);
    const notifier = createNotifier({ NOTIFY_SOCKET: path });
    assert.equal(notifier.transport, 'datagram');
    await withoutSystemdNotify(() => notifier.send({ READY: '1', STATUS: '2 tasks running\nlistening' }));
    const [datagram, more] = await receiver.readRaw(2, 1);
    assert.equal(datagram?.toString('utf8'), 'READY=1\nSTATUS=2 tasks running listening');
    assert.equal(more, undefined, 'one datagram');
  });

  it("waits for room when systemd's queue is full, rather than leaving the message to a child, and keeps the order", async () => {
    const path = join(directory, 'slow');
    const receiver = await Receiver.bind(path);
    receivers.push(receiver);
    const notifier = createNotifier({ NOTIFY_SOCKET: path });
    const received = await withoutSystemdNotify(async () => {
      // More than a datagram socket's queue holds (net.unix.max_dgram_qlen: 512 with systemd's sysctl defaults): the last ones wait for room.
      const sent = Promise.all(Array.from({ length: 600 }, (_, i) => notifier.send({ STATUS: `update ${i}` })));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const read = receiver.readRaw(600, 5);
      await sent;
      return read;
    });
    assert.deepEqual(
      received.map((datagram) => datagram.toString('utf8')),
      Array.from({ length: 600 }, (_, i) => `STATUS=update ${i}`),
      'every one, in the order sent',
    );
  });

  it('falls back to systemd-notify when nothing listens at the path', async () => {
    const notifier = createNotifier({ NOTIFY_SOCKET: join(directory, 'nobody') });
    await assert.rejects(
      withoutSystemdNotify(() => notifier.send({ READY: '1' })),
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT' && error.message.includes('systemd-notify'),
    );
  });

  it('leaves an abstract or vsock address to systemd-notify, and does nothing without $NOTIFY_SOCKET', async () => {
    assert.equal(createNotifier({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }).transport, 'systemd-notify');
    assert.equal(createNotifier({ NOTIFY_SOCKET: 'vsock:2:1234' }).transport, 'systemd-notify');
    assert.equal(createNotifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, null).transport, 'systemd-notify', 'without the addon');
    const off = createNotifier({});
    assert.equal(off.enabled, false);
    await withoutSystemdNotify(() => off.send({ READY: '1' }));
  });
});
