import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SystemBus, type BusSignal, type IncomingMessages } from '../../src/systemd/bus.js';
import { interceptMessages, MAX_DECIDED_BYTES, type MessageDecision } from '../../src/systemd/message-framing.js';
import { trimIncoming, unbelievedLargeSignal, type SignalTrimPolicy } from '../../src/systemd/signal-trimmer.js';
import { unitObjectPath } from '../../src/systemd/unit-path.js';
import { headerLength, WireFormatError } from '../../src/systemd/wire-message.js';
import { ScriptedBus } from '../harness/scripted-bus.js';
import { marshalMessage } from '../harness/wire-marshal.js';
import { seeded } from '../harness/seeded.js';

const SYSTEMD = ':1.1';
const WATCHED = unitObjectPath('tessia-task-0000abcd.service');
const OTHER = unitObjectPath('cron.service');
const KEEPS = new Set(['ActiveState', 'SubState', 'InvocationID', 'ActiveEnterTimestamp', 'Result', 'ExecMainStatus']);
const policy: SignalTrimPolicy = { systemdOwner: () => SYSTEMD, watches: (path) => path === WATCHED, keeps: KEEPS };

/** A unit's PropertiesChanged as systemd sends it: properties of many types, some the runner reads. */
const UNIT_PROPERTIES: [string, [string, unknown]][] = [
  ['Job', ['(uo)', [0, '/']]],
  ['ActiveState', ['s', 'active']],
  ['Conditions', ['a(sbbsi)', [['ConditionPathExists', false, false, '/etc/x', 1]]]],
  ['SubState', ['s', 'running']],
  ['ConditionResult', ['b', true]],
  ['Names', ['as', ['a.service', 'b.service']]],
  ['InvocationID', ['ay', [...Buffer.from('00112233445566778899aabbccddeeff', 'hex')]]],
  ['StateChangeTimestamp', ['t', 1_732_800_000_123_456n]],
  ['Nested', ['v', ['v', ['as', ['deep']]]]],
  ['ActiveEnterTimestamp', ['t', 1_732_800_000_000_001n]],
  ['Empty', ['a{sv}', []]],
  ['Weight', ['d', 2.5]],
  ['Small', ['y', 7]],
  ['Signed', ['n', -3]],
];

function propertiesChanged(
  properties: [string, [string, unknown]][],
  overrides: { path?: string; sender?: string; littleEndian?: boolean; invalidated?: string[] } = {},
) {
  return marshalMessage({
    type: 4,
    serial: 9,
    path: overrides.path ?? WATCHED,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'PropertiesChanged',
    sender: overrides.sender ?? SYSTEMD,
    littleEndian: overrides.littleEndian ?? true,
    body: ['sa{sv}as', ['org.freedesktop.systemd1.Unit', properties, overrides.invalidated ?? ['ExecStart']]],
  });
}

describe('trimIncoming', () => {
  it("drops systemd's signals about units the runner does not watch", () => {
    assert.equal(trimIncoming(propertiesChanged(UNIT_PROPERTIES, { path: OTHER }), policy), null);
  });

  it('passes another sender’s signals, and all while systemd’s owner is unknown, as they came', () => {
    const forged = propertiesChanged(UNIT_PROPERTIES, { path: OTHER, sender: ':1.99' });
    assert.equal(trimIncoming(forged, policy), forged, 'the client counts it as forged');
    const early = propertiesChanged(UNIT_PROPERTIES, { path: OTHER });
    assert.equal(trimIncoming(early, { ...policy, systemdOwner: () => null }), early);
  });

  it('passes method replies, other signals and signals already cut to size as they came', () => {
    const reply = marshalMessage({ type: 2, serial: 3, replySerial: 2, sender: SYSTEMD, body: ['s', ['x']] });
    assert.equal(trimIncoming(reply, policy), reply);
    const jobRemoved = marshalMessage({
      type: 4,
      serial: 4,
      path: '/org/freedesktop/systemd1',
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'JobRemoved',
      sender: SYSTEMD,
      body: ['uoss', [1, '/org/freedesktop/systemd1/job/1', 'cron.service', 'done']],
    });
    assert.equal(trimIncoming(jobRemoved, policy), jobRemoved);
    const onlyKept = propertiesChanged([['ActiveState', ['s', 'active']]]);
    assert.equal(trimIncoming(onlyKept, policy), onlyKept);
  });

  it('refuses a message whose body does not read as its signature says', () => {
    const whole = propertiesChanged(UNIT_PROPERTIES);
    assert.throws(() => trimIncoming(whole.subarray(0, whole.length - 9), policy), WireFormatError);
    const lying = Buffer.from(whole);
    lying.writeUInt32LE(0xffff, 16 + Math.ceil(lying.readUInt32LE(12) / 8) * 8 + 4 + 'org.freedesktop.systemd1.Unit'.length + 1 + 2);
    assert.throws(() => trimIncoming(lying, policy), WireFormatError);
  });
});

describe('unbelievedLargeSignal', () => {
  const header = (sender: string) => {
    const message = propertiesChanged(UNIT_PROPERTIES, { sender });
    return message.subarray(0, headerLength(message));
  };
  it("believes systemd's current owner and the bus, from the header alone", () => {
    assert.equal(unbelievedLargeSignal(header(SYSTEMD), policy), null);
    assert.equal(unbelievedLargeSignal(header('org.freedesktop.DBus'), policy), null);
  });
  it('names anyone else, for the client to count as forged; a header too large to hold is no one’s', () => {
    assert.deepEqual(unbelievedLargeSignal(null, policy), { sender: '', member: 'other', path: '' });
    assert.deepEqual(unbelievedLargeSignal(header(':1.99'), policy), { sender: ':1.99', member: 'PropertiesChanged', path: WATCHED });
    assert.deepEqual(unbelievedLargeSignal(header(SYSTEMD), { systemdOwner: () => null })?.sender, SYSTEMD, 'owner not known yet');
  });
});

describe('trimmed signals as dbus-next decodes them', () => {
  let directory: string;
  let trimmedSide: { bus: ScriptedBus; client: SystemBus; signals: BusSignal[] };
  let wholeSide: { bus: ScriptedBus; client: SystemBus; signals: BusSignal[] };

  async function connected(name: string, incoming?: IncomingMessages) {
    const bus = await ScriptedBus.listen(join(directory, name));
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    try {
      const client = await SystemBus.connect(incoming);
      const signals: BusSignal[] = [];
      client.on('signal', (signal) => signals.push(signal));
      return { bus, client, signals };
    } finally {
      process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous;
    }
  }

  /** The signals each side decodes from the same bytes: trimmed on one, whole on the other. */
  async function decodeBoth(messages: Buffer[], trimmedCount?: number): Promise<{ trimmed: BusSignal[]; whole: BusSignal[] }> {
    trimmedSide.signals.length = 0;
    wholeSide.signals.length = 0;
    for (const message of messages) {
      trimmedSide.bus.send(message);
      wholeSide.bus.send(message);
    }
    const arrived = (side: { signals: BusSignal[] }, count: number) => side.signals.length >= count;
    const expected = trimmedCount ?? messages.filter((message) => trimIncoming(message, policy) !== null).length;
    for (let waited = 0; !(arrived(trimmedSide, expected) && arrived(wholeSide, messages.length)); waited += 10) {
      if (waited > 5000) throw new Error('the signals did not arrive');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { trimmed: [...trimmedSide.signals], whole: [...wholeSide.signals] };
  }

  function assertKeptOf(trimmed: BusSignal, whole: BusSignal) {
    const [iface, changed, invalidated] = trimmed.body as [string, Record<string, unknown>, string[]];
    const [wholeIface, wholeChanged, wholeInvalidated] = whole.body as [string, Record<string, unknown>, string[]];
    assert.equal(iface, wholeIface);
    assert.deepEqual(invalidated, wholeInvalidated);
    assert.deepEqual(
      Object.keys(changed),
      Object.keys(wholeChanged).filter((name) => KEEPS.has(name)),
    );
    for (const name of Object.keys(changed)) assert.deepEqual(changed[name], wholeChanged[name], name);
  }

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-trim-'));
    trimmedSide = await connected('trimmed', {
      decide: (message) => trimIncoming(message, policy),
      keepLarge: (header) => unbelievedLargeSignal(header, policy) === null,
    });
    wholeSide = await connected('whole');
  });
  after(async () => {
    for (const side of [trimmedSide, wholeSide]) {
      side.client.close();
      await side.bus.close();
    }
    rmSync(directory, { recursive: true, force: true });
  });

  it('keeps exactly the properties the runner reads, with the values dbus-next reads from the whole signal', async () => {
    const { trimmed, whole } = await decodeBoth([propertiesChanged(UNIT_PROPERTIES)]);
    assert.equal(trimmed.length, 1);
    assertKeptOf(trimmed[0] as BusSignal, whole[0] as BusSignal);
    assert.deepEqual(Object.keys((trimmed[0]?.body as [string, Record<string, unknown>])[1]).sort(), [
      'ActiveEnterTimestamp',
      'ActiveState',
      'InvocationID',
      'SubState',
    ]);
  });

  it('in big-endian messages too (as systemd sends them on s390x), and with none kept or none invalidated', async () => {
    const none = UNIT_PROPERTIES.filter(([name]) => !KEEPS.has(name));
    const { trimmed, whole } = await decodeBoth([
      propertiesChanged(UNIT_PROPERTIES, { littleEndian: false }),
      propertiesChanged(none, { invalidated: [] }),
      propertiesChanged(UNIT_PROPERTIES, { path: OTHER }),
      propertiesChanged(none, { littleEndian: false }),
    ]);
    assert.equal(trimmed.length, 3, 'the other unit’s signal dropped, the rest in order');
    assertKeptOf(trimmed[0] as BusSignal, whole[0] as BusSignal);
    assertKeptOf(trimmed[1] as BusSignal, whole[1] as BusSignal);
    assertKeptOf(trimmed[2] as BusSignal, whole[3] as BusSignal);
    assert.deepEqual((trimmed[1]?.body as [string, Record<string, unknown>])[1], {});
  });

  it('skips a large signal from anyone but systemd unread, and decodes the next message as usual', async () => {
    const large = (sender: string) =>
      marshalMessage({
        type: 4,
        serial: 11,
        path: WATCHED,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'PropertiesChanged',
        sender,
        body: ['sa{sv}as', ['org.freedesktop.systemd1.Unit', [['Blob', ['as', Array.from({ length: 30_000 }, (_, i) => `s${i}`)]]], []]],
      });
    const { trimmed, whole } = await decodeBoth([large(':1.99'), large(SYSTEMD), propertiesChanged(UNIT_PROPERTIES)], 2);
    assert.equal(whole.length, 3);
    assert.deepEqual(
      trimmed.map((signal) => signal.sender),
      [SYSTEMD, SYSTEMD],
      "the forged one skipped; systemd's own passes whole (not cut: over 64 KiB)",
    );
    assert.equal(((trimmed[0]?.body as [string, Record<string, unknown>])[1]['Blob'] as { value: string[] }).value.length, 30_000);
    assertKeptOf(trimmed[1] as BusSignal, whole[2] as BusSignal);
  });

  it('agrees with dbus-next on 300 signals of random properties, types and order', async () => {
    const random = seeded(17);
    const names = [...UNIT_PROPERTIES.map(([name]) => name), 'Result', 'ExecMainStatus', 'Description', 'MainPID'];
    const values: Record<string, [string, unknown]> = {
      ...Object.fromEntries(UNIT_PROPERTIES),
      Result: ['s', 'success'],
      ExecMainStatus: ['i', -1],
      Description: ['s', 'é'.repeat(random(40))],
      MainPID: ['u', 4242],
    };
    const messages = Array.from({ length: 300 }, () => {
      const chosen = names.filter(() => random(2) === 0).sort(() => random(3) - 1);
      return propertiesChanged(
        chosen.map((name) => [name, values[name] as [string, unknown]]),
        { littleEndian: random(2) === 0, invalidated: random(2) === 0 ? [] : ['ExecStart', 'x'.repeat(random(9))] },
      );
    });
    const { trimmed, whole } = await decodeBoth(messages);
    assert.equal(trimmed.length, 300);
    trimmed.forEach((signal, i) => assertKeptOf(signal, whole[i] as BusSignal));
  });
});

describe('interceptMessages', () => {
  const messages = Array.from({ length: 12 }, (_, i) =>
    propertiesChanged(UNIT_PROPERTIES.slice(0, i + 1), { path: i % 3 === 0 ? OTHER : WATCHED }),
  );
  const decide: MessageDecision = (message) => trimIncoming(message, policy);
  const expected = Buffer.concat(messages.map((message) => decide(message)).filter((message): message is Buffer => message !== null));

  const keepLarge = (header: Buffer | null) => unbelievedLargeSignal(header, policy) === null;
  function through(chunks: Buffer[]): Buffer {
    // Fed by push() alone, as a socket is: read() asks for nothing.
    const socket = new Readable({ read: () => undefined });
    interceptMessages(socket, decide, keepLarge);
    for (const chunk of chunks) socket.push(chunk);
    const out: Buffer[] = [];
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null;) out.push(chunk);
    return Buffer.concat(out);
  }

  it('cuts the bytes into whole messages wherever the reads split them', () => {
    const all = Buffer.concat(messages);
    assert.deepEqual(through([all]), expected, 'one read');
    assert.deepEqual(through([...all].map((byte) => Buffer.of(byte))), expected, 'a byte a read');
    const random = seeded(5);
    for (let round = 0; round < 50; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < all.length;) {
        const size = 1 + random(400);
        chunks.push(all.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(through(chunks), expected, `round ${round}`);
    }
  });

  it('passes signals over 64 KiB and other messages as their bytes come: nothing large held or copied', () => {
    const large = marshalMessage({
      type: 4,
      serial: 3,
      path: OTHER,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'PropertiesChanged',
      sender: SYSTEMD,
      body: ['sa{sv}as', ['org.freedesktop.systemd1.Unit', [['Blob', ['ay', [...Buffer.alloc(MAX_DECIDED_BYTES, 7)]]]], []]],
    });
    assert.ok(large.length > MAX_DECIDED_BYTES);
    const reply = marshalMessage({ type: 2, serial: 4, replySerial: 1, sender: SYSTEMD, body: ['ay', [[...Buffer.alloc(200_000, 1)]]] });
    const all = Buffer.concat([large, reply, messages[1] as Buffer]);
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += 65_536) chunks.push(Buffer.from(all.subarray(at, at + 65_536)));
    const socket = new Readable({ read: () => undefined });
    const handedOn: Buffer[] = [];
    const push = socket.push.bind(socket);
    socket.push = (chunk: unknown) => {
      if (Buffer.isBuffer(chunk)) handedOn.push(chunk);
      return push(chunk);
    };
    interceptMessages(socket, decide);
    for (const chunk of chunks) socket.push(chunk);
    const small = decide(messages[1] as Buffer) as Buffer;
    assert.deepEqual(
      Buffer.concat(handedOn),
      Buffer.concat([large, reply, small]),
      'the other unit’s large signal not dropped: not decided on',
    );
    const ofInput = handedOn.slice(0, -1).filter((part) => chunks.some((chunk) => chunk.buffer === part.buffer));
    assert.equal(ofInput.length, handedOn.length - 1, 'all but the small signal are views of what the socket read');
  });

  it('skips large signals from anyone but systemd, and those with huge header fields, and passes the rest, wherever the reads split them', () => {
    const large = (sender: string) =>
      marshalMessage({
        type: 4,
        serial: 12,
        path: OTHER,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'PropertiesChanged',
        sender,
        body: ['sa{sv}as', ['org.freedesktop.systemd1.Unit', [['Blob', ['ay', [...Buffer.alloc(70_000, 3)]]]], []]],
      });
    // Header fields over 64 KiB (an object path has no limit of its own): judged without them, skipped.
    const longPath = marshalMessage({
      type: 4,
      serial: 13,
      path: `/x/${'a'.repeat(70_000)}`,
      interface: 'a.b',
      member: 'C',
      sender: SYSTEMD,
    });
    const sequence = [
      messages[1] as Buffer,
      large(':1.99'),
      messages[2] as Buffer,
      longPath,
      large(SYSTEMD),
      large(':1.50'),
      messages[0] as Buffer,
    ];
    const all = Buffer.concat(sequence);
    const wanted = Buffer.concat([decide(messages[1] as Buffer) as Buffer, decide(messages[2] as Buffer) as Buffer, large(SYSTEMD)]);
    const random = seeded(11);
    for (let round = 0; round < 40; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < all.length;) {
        const size = 1 + random(round % 2 === 0 ? 30 : 90_000);
        chunks.push(all.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(through(chunks), wanted, `round ${round}`);
    }
  });

  it('hands bytes that are not D-Bus messages on as they came, from then on', () => {
    const garbage = Buffer.from('not a message at all, just bytes');
    const first = messages[1] as Buffer;
    assert.deepEqual(
      through([first, garbage, messages[0] as Buffer]),
      Buffer.concat([decide(first) as Buffer, garbage, messages[0] as Buffer]),
    );
  });
});
