import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SystemBus, type BusSignal, type IncomingMessages } from '../../src/systemd/bus.js';
import { SystemdClient, type ForgedSignal } from '../../src/systemd/client.js';
import { interceptMessages, type MessageDecision } from '../../src/systemd/message-framing.js';
import { readSystemdSignal, type SignalReadPolicy } from '../../src/systemd/signal-decoder.js';
import { unitObjectPath } from '../../src/systemd/unit-path.js';
import { WireFormatError } from '../../src/systemd/wire-message.js';
import { ScriptedBus } from '../harness/scripted-bus.js';
import { marshalMessage } from '../harness/wire-marshal.js';
import { seeded } from '../harness/seeded.js';

const SYSTEMD = ':1.1';
const WATCHED = unitObjectPath('tessia-task-0000abcd.service');
const OTHER = unitObjectPath('cron.service');
const KEEPS = new Set(['ActiveState', 'SubState', 'InvocationID', 'ActiveEnterTimestamp', 'Result', 'ExecMainStatus', 'ExecMainCode']);
const AWAITED = 'tessia-task-0000abcd.service';
const policy: SignalReadPolicy = {
  systemdOwner: () => SYSTEMD,
  watches: (path) => path === WATCHED,
  keeps: KEEPS,
  awaitsJob: (unit) => unit === AWAITED,
};

/** Every type a unit's properties have, as systemd sends them; those the runner reads among them. */
const PROPERTIES: [string, [string, unknown]][] = [
  ['Job', ['(uo)', [0, '/']]],
  ['ActiveState', ['s', 'deactivating']],
  ['Conditions', ['a(sbbsi)', [['ConditionPathExists', false, false, '/etc/x', 1]]]],
  ['SubState', ['s', 'stop-sigterm']],
  ['InvocationID', ['ay', [...Buffer.from('00112233445566778899aabbccddeeff', 'hex')]]],
  ['StateChangeTimestamp', ['t', 1_732_800_000_123_456n]],
  ['Nested', ['v', ['v', ['as', ['deep']]]]],
  ['ActiveEnterTimestamp', ['t', 18_446_744_073_709_551_615n]],
  ['ExecMainStatus', ['i', -15]],
  ['ExecMainCode', ['i', 2]],
  ['Result', ['s', 'signal']],
  ['Weight', ['d', 2.5]],
  ['Small', ['y', 7]],
  // As long as names read (ActiveState, ExecMainCode) but not read.
  ['ExecMainPID', ['u', 4242]],
  ['MemoryLimit', ['t', 2n ** 64n - 1n]],
];

function propertiesChanged(
  properties: [string, [string, unknown]][],
  overrides: { path?: string; sender?: string; littleEndian?: boolean; invalidated?: string[]; serial?: number } = {},
) {
  return marshalMessage({
    type: 4,
    serial: overrides.serial ?? 9,
    path: overrides.path ?? WATCHED,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'PropertiesChanged',
    sender: overrides.sender ?? SYSTEMD,
    littleEndian: overrides.littleEndian ?? true,
    body: ['sa{sv}as', ['org.freedesktop.systemd1.Unit', properties, overrides.invalidated ?? []]],
  });
}

function jobRemoved(unit: string, overrides: { sender?: string; littleEndian?: boolean; result?: string } = {}) {
  return marshalMessage({
    type: 4,
    serial: 4,
    path: '/org/freedesktop/systemd1',
    interface: 'org.freedesktop.systemd1.Manager',
    member: 'JobRemoved',
    sender: overrides.sender ?? SYSTEMD,
    littleEndian: overrides.littleEndian ?? true,
    body: ['uoss', [77, '/org/freedesktop/systemd1/job/77', unit, overrides.result ?? 'done']],
  });
}

describe('readSystemdSignal', () => {
  it('reads a JobRemoved somebody waits for, and drops one nobody waits for, in either byte order', () => {
    for (const littleEndian of [true, false]) {
      assert.deepEqual(readSystemdSignal(jobRemoved(AWAITED, { littleEndian, result: 'failed' }), policy), {
        kind: 'jobRemoved',
        unitName: AWAITED,
        result: 'failed',
      });
      assert.equal(readSystemdSignal(jobRemoved('cron.service', { littleEndian }), policy), null);
    }
  });

  it("drops systemd's PropertiesChanged of a unit not followed, whatever its body", () => {
    assert.equal(readSystemdSignal(propertiesChanged(PROPERTIES, { path: OTHER }), policy), null);
  });

  it('leaves to dbus-next: other senders, any signal while systemd’s owner is unknown, replies, other members', () => {
    const passOn = { kind: 'passOn' };
    assert.deepEqual(readSystemdSignal(jobRemoved(AWAITED, { sender: ':1.99' }), policy), passOn, 'the client counts it as forged');
    assert.deepEqual(readSystemdSignal(propertiesChanged(PROPERTIES, { sender: ':1.99' }), policy), passOn);
    assert.deepEqual(readSystemdSignal(jobRemoved(AWAITED), { ...policy, systemdOwner: () => null }), passOn);
    const reply = marshalMessage({ type: 2, serial: 3, replySerial: 2, sender: SYSTEMD, body: ['s', ['x']] });
    assert.deepEqual(readSystemdSignal(reply, policy), passOn);
    const unitNew = marshalMessage({
      type: 4,
      serial: 5,
      path: '/org/freedesktop/systemd1',
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'UnitNew',
      sender: SYSTEMD,
      body: ['so', [AWAITED, WATCHED]],
    });
    assert.deepEqual(readSystemdSignal(unitNew, policy), passOn);
  });

  it('refuses a signal with a file descriptor from anyone but systemd or the bus (dbus-next cannot read it), in a variant too', () => {
    const withBody = (sender: string, body: [string, unknown[]]) =>
      marshalMessage({ type: 4, serial: 6, path: WATCHED, interface: 'x.y', member: 'PropertiesChanged', sender, body });
    const forged = { kind: 'forgedWithDescriptor', sender: ':1.99', member: 'PropertiesChanged', path: WATCHED };
    const holding: [string, unknown[]][] = [
      ['h', [0]],
      ['sh', ['x', 1]],
      ['v', [['h', 0]]],
      [
        'a{sv}',
        [
          [
            ['a', ['s', 'x']],
            ['b', ['h', 2]],
          ],
        ],
      ],
      ['sa{sv}as', ['i', [['n', ['v', ['a(ih)', [[1, 2]]]]]], ['z']]],
      [
        'av',
        [
          [
            ['ai', [1, 2, 3]],
            ['(sv)', ['k', ['h', 4]]],
          ],
        ],
      ],
    ];
    for (const body of holding) {
      assert.deepEqual(readSystemdSignal(withBody(':1.99', body), policy), forged, body[0]);
      assert.equal(readSystemdSignal(withBody(':1.99', body), { ...policy, systemdOwner: () => null })?.kind, 'forgedWithDescriptor');
      assert.deepEqual(readSystemdSignal(withBody(SYSTEMD, body), policy), { kind: 'passOn' }, 'systemd’s own');
      assert.deepEqual(readSystemdSignal(withBody('org.freedesktop.DBus', body), policy), { kind: 'passOn' }, 'the bus’s own');
    }
    const without: [string, unknown[]][] = [
      ['s', ['h']],
      [
        'a{sv}',
        [
          [
            ['h', ['s', 'h']],
            ['t', ['at', [1n]]],
          ],
        ],
      ],
      [
        'av',
        [
          [
            ['(sv)', ['k', ['ay', [1, 2]]]],
            ['as', ['h']],
          ],
        ],
      ],
      ['v', [['v', ['v', ['u', 7]]]]],
    ];
    for (const body of without) assert.deepEqual(readSystemdSignal(withBody(':1.99', body), policy), { kind: 'passOn' }, body[0]);
  });

  it('leaves a followed unit’s signal to dbus-next when a property it reads has a type not read here', () => {
    const odd = propertiesChanged([['ActiveState', ['as', ['active']]]]);
    assert.deepEqual(readSystemdSignal(odd, policy), { kind: 'passOn' });
  });

  it('refuses a body that does not read as its signature says', () => {
    const whole = jobRemoved(AWAITED);
    assert.throws(() => readSystemdSignal(whole.subarray(0, whole.length - 3), policy), WireFormatError);
    const signal = propertiesChanged(PROPERTIES);
    assert.throws(() => readSystemdSignal(signal.subarray(0, signal.length - 9), policy), WireFormatError);
  });
});

describe('signals read on the wire, against dbus-next reading the same bytes', () => {
  let directory: string;
  let bus: ScriptedBus;
  let client: SystemBus;
  const signals: BusSignal[] = [];

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-decode-'));
    bus = await ScriptedBus.listen(join(directory, 'bus'));
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    try {
      client = await SystemBus.connect();
    } finally {
      process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous;
    }
    client.on('signal', (signal) => signals.push(signal));
  });
  after(async () => {
    client.close();
    await bus.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function decodedByDbusNext(messages: Buffer[]): Promise<BusSignal[]> {
    signals.length = 0;
    for (const message of messages) bus.send(message);
    for (let waited = 0; signals.length < messages.length; waited += 10) {
      if (waited > 5000) throw new Error('the signals did not arrive');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return [...signals];
  }

  it('gives the values dbus-next gives, on 300 signals of random properties, types and order; the same in big-endian', async () => {
    const random = seeded(23);
    const values: [string, [string, unknown]][] = [
      ...PROPERTIES,
      ['ExecMainStatus', ['i', 2_147_483_647]],
      ['ExecMainStatus', ['i', -2_147_483_648]],
      ['ActiveEnterTimestamp', ['t', 0n]],
      ['ActiveEnterTimestamp', ['t', 1_732_800_000_000_001n]],
      ['ExecMainCode', ['i', 1]],
      ['SubState', ['s', 'é'.repeat(random(40))]],
      ['Result', ['s', '']],
      ['InvocationID', ['ay', []]],
    ];
    const chosen = Array.from({ length: 300 }, () => {
      const some = values.filter(() => random(2) === 0).sort(() => random(3) - 1);
      return {
        properties: [...new Map(some.map((entry) => [entry[0], entry])).values()],
        invalidated: random(2) === 0 ? [] : ['ExecStart'],
      };
    });
    const little = chosen.map(({ properties, invalidated }) => propertiesChanged(properties, { invalidated }));
    const whole = await decodedByDbusNext(little);
    chosen.forEach(({ properties, invalidated }, i) => {
      const read = readSystemdSignal(little[i] as Buffer, policy);
      assert.ok(read !== null && read.kind === 'propertiesChanged', `message ${i}`);
      const [iface, changed] = (whole[i] as BusSignal).body as [string, Record<string, { value: unknown }>];
      assert.equal(read.interface, iface);
      assert.equal(read.path, WATCHED);
      const expected = Object.fromEntries(
        Object.entries(changed)
          .filter(([name]) => KEEPS.has(name))
          .map(([name, variant]) => [name, variant.value]),
      );
      assert.deepEqual(read.changed, expected, `message ${i}`);
      // dbus-next reads a big-endian 64-bit value with its halves swapped (its unmarshaller joins
      // the second 32-bit word above the first in either byte order): so against the little-endian reading.
      const big = readSystemdSignal(propertiesChanged(properties, { invalidated, littleEndian: false }), policy);
      assert.deepEqual(big, read, `message ${i}, big-endian`);
    });
  });

  it('reads a JobRemoved as dbus-next does', async () => {
    const [decoded] = await decodedByDbusNext([jobRemoved(AWAITED, { littleEndian: false, result: 'canceled' })]);
    const read = readSystemdSignal(jobRemoved(AWAITED, { littleEndian: false, result: 'canceled' }), policy);
    const [, , unit, result] = (decoded as BusSignal).body as [number, string, string, string];
    assert.deepEqual(read, { kind: 'jobRemoved', unitName: unit, result });
  });
});

describe("the systemd client's connection, against signals any local user may send it", () => {
  it('counts a forged signal with a file descriptor, which dbus-next would throw on out of its stream (ending the process), and reads on', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tessia-fd-'));
    const bus = await ScriptedBus.listen(join(directory, 'bus'));
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const systemd = await SystemdClient.connect(() => true).finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
    try {
      const forged: ForgedSignal[] = [];
      systemd.on('forgedSignal', (signal) => forged.push(signal));
      const signal = (serial: number, body: [string, unknown[]]) =>
        marshalMessage({
          type: 4,
          serial,
          path: WATCHED,
          interface: 'org.freedesktop.DBus.Properties',
          member: 'PropertiesChanged',
          sender: ':1.99',
          body,
        });
      bus.send(
        Buffer.concat([
          signal(20, ['h', [0]]),
          signal(21, ['sa{sv}as', ['org.freedesktop.systemd1.Unit', [['ActiveState', ['h', 0]]], []]]),
          signal(22, ['sa{sv}as', ['org.freedesktop.systemd1.Unit', [], []]]),
        ]),
      );
      for (let waited = 0; forged.length < 3; waited += 10) {
        if (waited > 5000) throw new Error(`${forged.length} of 3 forged signals counted`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(
        forged.map((one) => one.sender),
        [':1.99', ':1.99', ':1.99'],
        'those with a descriptor (one in a variant) refused on the wire, the next as before',
      );
    } finally {
      systemd.close();
      await bus.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe("the systemd client's believed owner", () => {
  it("believes systemd's owner on its connection, and nobody once that connection is lost", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tessia-owner-'));
    const bus = await ScriptedBus.listen(join(directory, 'bus'));
    // attach(): AddMatch (NameOwnerChanged, answered by the bus), then GetNameOwner: systemd is :1.1.
    bus.replies.push({ body: ['s', [SYSTEMD]], littleEndian: true });
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const systemd = await SystemdClient.connect(() => true).finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
    try {
      systemd.watch(AWAITED);
      const changed = new Promise((resolve) => systemd.once('unitChanged', resolve));
      bus.send(propertiesChanged([['ActiveState', ['s', 'active']]]));
      assert.deepEqual(await changed, {
        unitName: AWAITED,
        interface: 'org.freedesktop.systemd1.Unit',
        changed: { ActiveState: 'active' },
      });
      const lost = new Promise((resolve) => systemd.once('disconnected', resolve));
      await bus.close();
      await lost;
      assert.equal(
        (systemd as unknown as { systemdOwner: string | null }).systemdOwner,
        null,
        'a new connection believes nobody before it has asked',
      );
    } finally {
      systemd.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('messages read here keep their order among the signals dbus-next hands on', () => {
  const slow = (serial: number) =>
    marshalMessage({
      type: 4,
      serial,
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'NameOwnerChanged',
      sender: 'org.freedesktop.DBus',
      body: ['sss', [`n${serial}`, '', ':1.9']],
    });
  const reply = (serial: number) => marshalMessage({ type: 2, serial, replySerial: serial, sender: SYSTEMD });

  it('delivers at once when no signal is ahead with dbus-next, else right after the signals ahead are handed on', () => {
    const delivered: string[] = [];
    const decide: MessageDecision = (message) =>
      message.includes('JobRemoved') ? { deliver: () => delivered.push(`read ${message.readUInt32LE(8)}`) } : message;
    const socket = new Readable({ read: () => undefined });
    const order = interceptMessages(socket, decide);
    const job = (serial: number) => {
      const message = jobRemoved(AWAITED);
      message.writeUInt32LE(serial, 8);
      return message;
    };
    socket.push(Buffer.concat([reply(1), job(2)]));
    assert.deepEqual(delivered, ['read 2'], 'a reply ahead does not hold it: dbus-next acts on replies in a later microtask');
    socket.push(Buffer.concat([slow(3), job(4), job(5), slow(6), job(7)]));
    assert.deepEqual(delivered, ['read 2'], 'held behind the signal given to dbus-next');
    order.signalHandedOn();
    assert.deepEqual(delivered, ['read 2', 'read 4', 'read 5']);
    order.signalHandedOn();
    assert.deepEqual(delivered, ['read 2', 'read 4', 'read 5', 'read 7']);
    socket.push(job(8));
    assert.deepEqual(delivered.at(-1), 'read 8', 'nothing ahead again');
    order.signalHandedOn(); // a signal not framed here: nothing to release
    assert.equal(delivered.length, 5);
  });

  it('delivers nothing once closed (the connection is lost): neither what waits nor what comes', () => {
    const delivered: number[] = [];
    const decide: MessageDecision = (message) =>
      message.includes('JobRemoved') ? { deliver: () => delivered.push(message.readUInt32LE(8)) } : message;
    const socket = new Readable({ read: () => undefined });
    const order = interceptMessages(socket, decide);
    const job = jobRemoved(AWAITED);
    socket.push(Buffer.concat([slow(1), job]));
    order.close();
    order.signalHandedOn();
    socket.push(job);
    assert.deepEqual(delivered, []);
  });

  it('holds a big-endian method reply whole and decides on it (its 64-bit values), wherever the reads split it; never in the signal order', () => {
    const getReply = marshalMessage({
      type: 2,
      serial: 7,
      replySerial: 3,
      sender: SYSTEMD,
      littleEndian: false,
      body: ['v', [['t', 1_732_800_000_000_001n]]],
    });
    const largeReply = marshalMessage({
      type: 2,
      serial: 8,
      replySerial: 4,
      sender: SYSTEMD,
      littleEndian: false,
      body: ['ay', [[...Buffer.alloc(70_000, 5)]]],
    });
    const errorReply = marshalMessage({
      type: 3,
      serial: 9,
      replySerial: 5,
      sender: SYSTEMD,
      littleEndian: false,
      extraFields: [[4, ['s', 'x.Error']]],
      body: ['s', ['no']],
    });
    const littleReply = marshalMessage({ type: 2, serial: 10, replySerial: 6, sender: SYSTEMD, body: ['v', [['t', 5n]]] });
    const all = Buffer.concat([getReply, jobRemoved(AWAITED), largeReply, errorReply, littleReply, jobRemoved(AWAITED)]);
    for (const size of [1, 7, 64, 1000, all.length]) {
      const decided: number[] = [];
      const delivered: string[] = [];
      const decide: MessageDecision = (message) => {
        decided.push(message.readUInt32BE(8));
        if (message[1] === 4) return { deliver: () => delivered.push('job') };
        return Buffer.from(message).fill(0xee, message.length - 8);
      };
      const socket = new Readable({ read: () => undefined });
      interceptMessages(socket, decide);
      for (let at = 0; at < all.length; at += size) socket.push(all.subarray(at, at + size));
      const out: Buffer[] = [];
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null;) out.push(chunk);
      assert.deepEqual(delivered, ['job', 'job'], `reads of ${size}: the signals after the replies not held back by them`);
      assert.equal(decided.length, 3, `reads of ${size}: the big-endian reply and the signals decided on, nothing else`);
      const expected = Buffer.concat([Buffer.from(getReply).fill(0xee, getReply.length - 8), largeReply, errorReply, littleReply]);
      assert.deepEqual(Buffer.concat(out), expected, `reads of ${size}`);
    }
  });

  it("a message read here in the same read as the reply to a call awaited: delivered before the call's continuation, as dbus-next would", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tessia-reply-'));
    const bus = await ScriptedBus.listen(join(directory, 'bus'));
    const seen: string[] = [];
    const incoming: IncomingMessages = {
      decide: (message) => {
        const read = readSystemdSignal(message, policy);
        return read?.kind === 'jobRemoved' ? { deliver: () => seen.push(`job ${read.result}`) } : message;
      },
    };
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const client = await SystemBus.connect(incoming).finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
    try {
      client.on('signal', (signal) => seen.push(`dbus-next ${signal.member}`));
      bus.replies.push({
        body: ['o', ['/org/freedesktop/systemd1/job/1']],
        littleEndian: true,
        then: Buffer.concat([slow(40), jobRemoved(AWAITED, { result: 'r1' })]),
      });
      await client.call({ destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1', interface: 'x.y', member: 'Start' });
      seen.push('reply');
      assert.deepEqual(seen, ['dbus-next NameOwnerChanged', 'job r1', 'reply']);
    } finally {
      client.close();
      await bus.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('through SystemBus and dbus-next: the wire’s order, whatever the reads', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'tessia-order-'));
    const bus = await ScriptedBus.listen(join(directory, 'bus'));
    const seen: string[] = [];
    const incoming: IncomingMessages = {
      decide: (message) => {
        const read = readSystemdSignal(message, policy);
        if (read === null) return null;
        if (read.kind === 'jobRemoved') return { deliver: () => seen.push(`job ${read.result}`) };
        if (read.kind === 'propertiesChanged') return { deliver: () => seen.push(`changed ${String(read.changed['SubState'])}`) };
        return message;
      },
    };
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const client = await SystemBus.connect(incoming).finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
    try {
      client.on('signal', (signal) => seen.push(`dbus-next ${signal.member}`));
      const wire: Buffer[] = [];
      const expected: string[] = [];
      for (let i = 0; i < 60; i++) {
        const kind = i % 5;
        if (kind === 0) {
          wire.push(slow(100 + i));
          expected.push('dbus-next NameOwnerChanged');
        } else if (kind === 1 || kind === 3) {
          wire.push(propertiesChanged([['SubState', ['s', `s${i}`]]]));
          expected.push(`changed s${i}`);
        } else if (kind === 2) {
          wire.push(jobRemoved(AWAITED, { result: `r${i}` }));
          expected.push(`job r${i}`);
        } else {
          wire.push(jobRemoved('cron.service'), propertiesChanged(PROPERTIES, { path: OTHER })); // dropped
        }
      }
      const all = Buffer.concat(wire);
      const random = seeded(3);
      for (let at = 0; at < all.length;) {
        const size = 1 + random(700);
        bus.send(all.subarray(at, at + size));
        at += size;
        if (random(4) === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      for (let waited = 0; seen.length < expected.length; waited += 10) {
        if (waited > 5000) throw new Error(`only ${seen.length} of ${expected.length} arrived`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(seen, expected);
    } finally {
      client.close();
      await bus.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
