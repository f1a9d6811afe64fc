import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SystemBus, type IncomingMessages } from '../../src/systemd/bus.js';
import { forDbusNext64 } from '../../src/systemd/dbus-next-uint64.js';
import { ScriptedBus } from '../harness/scripted-bus.js';
import { marshalMessage } from '../harness/wire-marshal.js';

const TIMESTAMP = 1_732_800_000_000_001n;
const NEGATIVE = -1_732_800_000_000_001n;

describe('64-bit values of big-endian replies, as dbus-next reads them', () => {
  let directory: string;
  const sides: { bus: ScriptedBus; client: SystemBus }[] = [];

  async function connected(name: string, incoming?: IncomingMessages) {
    const bus = await ScriptedBus.listen(join(directory, name));
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    try {
      const side = { bus, client: await SystemBus.connect(incoming) };
      sides.push(side);
      return side;
    } finally {
      process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous;
    }
  }

  async function get(side: { bus: ScriptedBus; client: SystemBus }, type: string, value: unknown, littleEndian: boolean): Promise<unknown> {
    side.bus.replies.push({ body: ['v', [[type, value]]], littleEndian });
    const [variant] = (await side.client.call({
      destination: 'org.freedesktop.systemd1',
      path: '/org/freedesktop/systemd1/unit/x_2eservice',
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Get',
      signature: 'ss',
      body: ['org.freedesktop.systemd1.Unit', 'ActiveEnterTimestamp'],
    })) as [{ value: unknown }];
    return variant.value;
  }

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-uint64-'));
  });
  after(async () => {
    for (const side of sides) {
      side.client.close();
      await side.bus.close();
    }
    rmSync(directory, { recursive: true, force: true });
  });

  it('reads the value sent, in either byte order, through the bus the runner connects', async () => {
    const side = await connected('fixed', { decide: (message) => message });
    for (const littleEndian of [true, false]) {
      assert.equal(await get(side, 't', TIMESTAMP, littleEndian), TIMESTAMP, `t, little-endian ${littleEndian}`);
      assert.equal(await get(side, 'x', NEGATIVE, littleEndian), NEGATIVE, `x, little-endian ${littleEndian}`);
      assert.equal(await get(side, 's', 'active', littleEndian), 'active', 'other types as they came');
    }
  });

  it('dbus-next alone still swaps the halves (when it no longer does, dbus-next-uint64.ts goes)', async () => {
    const side = await connected('bare');
    assert.equal(await get(side, 't', TIMESTAMP, true), TIMESTAMP);
    const swapped = (TIMESTAMP & 0xffff_ffffn) * 2n ** 32n + (TIMESTAMP >> 32n);
    assert.equal(await get(side, 't', TIMESTAMP, false), swapped);
  });

  it('leaves every other message as it came', () => {
    const reply = (type: number, signature: string, values: unknown[]) =>
      marshalMessage({ type: type as 2 | 4, serial: 3, replySerial: 2, sender: ':1.1', littleEndian: false, body: [signature, values] });
    for (const message of [
      reply(2, 'v', [['u', 7]]),
      reply(2, 't', [TIMESTAMP]),
      reply(2, 'vs', [['t', TIMESTAMP], 'x']),
      reply(4, 'v', [['t', TIMESTAMP]]),
    ]) {
      assert.equal(forDbusNext64(message), message);
    }
  });
});
