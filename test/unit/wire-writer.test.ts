import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Message, Variant, sessionBus, type MessageBus } from '@jellybrick/dbus-next';
import { validateConfig } from '../../src/config/load.js';
import { MachineRegistry } from '../../src/machines/registry.js';
import { SystemBus, type MethodCall } from '../../src/systemd/bus.js';
import { checkUnitProperties, unitProperties } from '../../src/systemd/unit-spec.js';
import { MarshalError, marshalMethodCall } from '../../src/systemd/wire-writer.js';
import { ScriptedBus } from '../harness/scripted-bus.js';
import { seeded } from '../harness/seeded.js';

const MANAGER = {
  destination: 'org.freedesktop.systemd1',
  path: '/org/freedesktop/systemd1',
  interface: 'org.freedesktop.systemd1.Manager',
};

/** A random type, at most `depth` levels deep, and a value of it in the shapes dbus-next takes. */
function randomTyped(random: (n: number) => number, depth: number): { signature: string; value: () => unknown } {
  const basics = 'ybnqiuxtdsog';
  const kind = depth <= 0 ? 0 : random(6);
  if (kind === 0 || kind === 1) {
    const code = basics[random(basics.length)] ?? 's';
    return { signature: code, value: () => randomBasic(random, code) };
  }
  if (kind === 2) {
    const element = randomTyped(random, depth - 1);
    // Bytes, as dbus-next takes them: a Buffer or numbers.
    if (element.signature === 'y' && random(2) === 0) {
      return { signature: 'ay', value: () => Buffer.from(Array.from({ length: random(20) }, () => random(256))) };
    }
    return { signature: `a${element.signature}`, value: () => Array.from({ length: random(4) }, () => element.value()) };
  }
  if (kind === 3) {
    const members = Array.from({ length: 1 + random(4) }, () => randomTyped(random, depth - 1));
    return { signature: `(${members.map((member) => member.signature).join('')})`, value: () => members.map((member) => member.value()) };
  }
  if (kind === 4) {
    const value = randomTyped(random, depth - 1);
    return {
      signature: `a{s${value.signature}}`,
      value: () =>
        Object.fromEntries(Array.from({ length: random(4) }, (_, index) => [`key${index}${'é'.repeat(random(3))}`, value.value()])),
    };
  }
  return {
    signature: 'v',
    value: () => {
      const inner = randomTyped(random, depth - 1);
      return new Variant(inner.signature, inner.value());
    },
  };
}

function randomBasic(random: (n: number) => number, code: string): unknown {
  const int = (bits: number, signed: boolean) => {
    const value = random(2 ** Math.min(bits, 31)) * (bits > 31 ? 2 : 1);
    return signed && random(2) === 0 ? -value : value;
  };
  switch (code) {
    case 'y':
      return random(256);
    case 'b':
      return random(2) === 0;
    case 'n':
      return random(2 ** 15) * (random(2) === 0 ? -1 : 1);
    case 'q':
      return random(2 ** 16);
    case 'i':
      return int(32, true) % 2 ** 31;
    case 'u':
      return int(32, false);
    case 'x':
      return BigInt(random(2 ** 30)) * BigInt(random(2 ** 30)) * (random(2) === 0 ? -1n : 1n);
    case 't':
      return BigInt(random(2 ** 31)) * BigInt(random(2 ** 31)) * BigInt(1 + random(4));
    case 'd':
      return random(1e9) / 7;
    case 's':
      return ['', 'fail', 'tessia-task-0a1b2c3d.service', 'ünïcödé ☃', 'x'.repeat(random(300))][random(5)];
    case 'o':
      return ['/', '/org/freedesktop/systemd1', `/org/freedesktop/systemd1/unit/tessia_2dtask_${random(1000)}`][random(3)];
    default:
      return ['', 's', 'a(sv)', 'ssa(sv)a(sa(sv))'][random(4)];
  }
}

describe('method calls marshalled by the runner', () => {
  let directory: string;
  let bus: ScriptedBus;
  let dbusNext: MessageBus;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-wire-writer-'));
    bus = await ScriptedBus.listen(join(directory, 'bus'));
    dbusNext = sessionBus({ busAddress: bus.address });
    await new Promise<void>((resolve) => dbusNext.once('connect', () => resolve()));
  });
  after(async () => {
    dbusNext.disconnect();
    await bus.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** What dbus-next writes for the call, and what the runner's writer makes of it with the same serial. */
  async function both(call: MethodCall): Promise<[ours: Buffer, dbusNexts: Buffer]> {
    const sent = bus.calls.length;
    await dbusNext.call(new Message({ ...call, signature: call.signature ?? '', body: call.body ?? [] }));
    const theirs = bus.calls[sent];
    assert.ok(theirs, 'dbus-next sent nothing');
    return [marshalMethodCall(call, theirs.readUInt32LE(8)), theirs];
  }

  it('writes the bytes dbus-next writes, for 400 random calls of every type it sends', async () => {
    const random = seeded(1717);
    const signatures = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const types = Array.from({ length: random(5) }, () => randomTyped(random, 3));
      const signature = types.map((type) => type.signature).join('');
      if (signature.length > 255) continue;
      signatures.add(signature);
      const call = { ...MANAGER, member: `Call${i}`, signature, body: types.map((type) => type.value()) };
      const [ours, theirs] = await both(call);
      assert.deepEqual(ours, theirs, `call ${i}, signature ${signature}`);
    }
    assert.ok(signatures.size > 250, `only ${signatures.size} signatures`);
    // Every kind of type was written at least once.
    const all = [...signatures].join('');
    for (const code of 'ybnqiuxtdsogva({') assert.ok(all.includes(code), `no ${code} in any signature`);
  });

  it("writes a task's and a check's StartTransientUnit as dbus-next does", async () => {
    const document = {
      exec: ['/usr/lib/tessia/machines/inventory', '--verbose'],
      check: ['/usr/lib/tessia/machines/inventory', '--check'],
      limits: { memoryMax: '256M', tasksMax: 16, checkTimeoutSec: 5 },
      sandbox: { readWritePaths: ['/srv/inventory'] },
    };
    const machine = new MachineRegistry(validateConfig({ machines: { inventory: document } }).machines).get('inventory');
    assert.ok(machine);
    const task = unitProperties(
      machine.unitSpec({
        taskId: '3f9c2a1b',
        unitName: 'tessia-task-3f9c2a1b.service',
        machineName: 'inventory',
        slice: 'tessia-tasks.slice',
        parametersFile: '/run/tessia-task-runner/parameters/3f9c2a1b',
      }),
    );
    const check = checkUnitProperties(
      machine.checkUnitSpec({
        checkId: '0123456789abcdef',
        unitName: 'tessia-check-0123456789abcdef.service',
        slice: 'tessia-tasks.slice',
        parametersFile: '/run/tessia-task-runner-starter/parameters/check-0123456789abcdef.json',
        reasonFile: '/run/tessia-task-runner-starter/parameters/check-0123456789abcdef.reason',
      }),
    );
    for (const [unit, properties] of [
      ['tessia-task-3f9c2a1b.service', task],
      ['tessia-check-0123456789abcdef.service', check],
    ] as const) {
      const [ours, theirs] = await both({
        ...MANAGER,
        member: 'StartTransientUnit',
        signature: 'ssa(sv)a(sa(sv))',
        body: [unit, 'fail', properties, []],
      });
      assert.deepEqual(ours, theirs, unit);
    }
  });

  it('refuses a value that does not fit its type, and a type it does not send', () => {
    const call = (signature: string, value: unknown): MethodCall => ({ ...MANAGER, member: 'X', signature, body: [value] });
    for (const [signature, value] of [
      ['u', -1],
      ['u', 2 ** 32],
      ['y', 256],
      ['i', 1.5],
      ['t', -1n],
      ['t', 2n ** 64n],
      ['x', 2n ** 63n],
      ['s', 7],
      ['b', 1],
      ['v', 'not a variant'],
      ['(ss)', ['one']],
      ['as', 'not an array'],
      ['h', 0],
      ['a{vs}', {}],
      ['(s', ['x']],
      ['v', new Variant('ss', ['a', 'b'])],
      // dbus-daemon disconnects whoever sends these: refused before anything is written.
      ['s', 'a\0b'],
      ['o', '/org/freedesktop/systemd1/unit/tessia-task'],
      ['o', '/org//x'],
      ['o', 'relative/path'],
      ['o', '/trailing/'],
    ] as const) {
      assert.throws(() => marshalMethodCall(call(signature, value), 1), MarshalError, `${signature} ${typeof value}`);
    }
    assert.throws(() => marshalMethodCall({ ...MANAGER, member: 'X', signature: 'ss', body: ['one'] }, 1), MarshalError);
    assert.throws(() => marshalMethodCall({ ...MANAGER, path: '/org/freedesktop/systemd1/unit/a.service', member: 'X' }, 1), MarshalError);
    assert.throws(() => marshalMethodCall({ ...MANAGER, member: 'X\0' }, 1), MarshalError);
  });

  it("is what the runner's bus sends, and its replies come back through dbus-next", async () => {
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    const runnerBus = await SystemBus.connect().finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
    try {
      const call = { ...MANAGER, member: 'StopUnit', signature: 'ss', body: ['tessia-task-3f9c2a1b.service', 'replace'] };
      bus.replies.push({ body: ['o', ['/org/freedesktop/systemd1/job/42']], littleEndian: true });
      assert.deepEqual(await runnerBus.call(call), ['/org/freedesktop/systemd1/job/42']);
      const sent = bus.calls.at(-1);
      assert.ok(sent);
      assert.deepEqual(sent, marshalMethodCall(call, sent.readUInt32LE(8)));
      // Big-endian replies as well (systemd's on s390x).
      bus.replies.push({ body: ['o', ['/org/freedesktop/systemd1/job/43']], littleEndian: false });
      assert.deepEqual(await runnerBus.call(call), ['/org/freedesktop/systemd1/job/43']);
    } finally {
      runnerBus.close();
    }
  });
});
