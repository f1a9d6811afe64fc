/**
 * Each followed unit has a match rule of its own (src/systemd/client.ts): systemd's signals about
 * other units are not sent to the runner; beyond UNIT_MATCH_LIMIT units, or when the bus refuses a
 * rule, one rule for all units.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SystemdClient, UNIT_MATCH_LIMIT } from '../../src/systemd/client.js';
import { unitObjectPath } from '../../src/systemd/unit-path.js';
import { ScriptedBus } from '../harness/scripted-bus.js';

const ALL_UNITS = "path_namespace='/org/freedesktop/systemd1/unit'";
const unitName = (index: number) => `tessia-task-${index.toString(16).padStart(8, '0')}.service`;
const pathRule = (unit: string) => `path='${unitObjectPath(unit)}'`;

/** The calls the bus was sent, in order: member, the rule of AddMatch and RemoveMatch, and whether a reply was asked for. */
function sent(bus: ScriptedBus): { member: string; rule: string; reply: boolean }[] {
  return bus.calls.map((bytes) => {
    const text = bytes.toString('latin1');
    const member = ['Hello', 'AddMatch', 'RemoveMatch', 'GetNameOwner', 'Subscribe', 'StopUnit'].find((name) => text.includes(name)) ?? '?';
    const rule = /type='signal'[^\0]*/.exec(text)?.[0] ?? '';
    return { member, rule, reply: ((bytes[2] ?? 0) & 1) === 0 };
  });
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > 5000) throw new Error(`not in time: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("followed units' match rules", () => {
  let directory: string;
  let bus: ScriptedBus;
  let systemd: SystemdClient;

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-matches-'));
    bus = await ScriptedBus.listen(join(directory, 'bus'));
    const previous = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    systemd = await SystemdClient.connect(() => true).finally(() => (process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previous));
  });
  afterEach(async () => {
    systemd.close();
    await bus.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('asks for no unit’s signals until one is followed; a unit’s rule reaches the bus before what is sent after it, and goes before what follows its unwatch', async () => {
    const atStart = sent(bus);
    assert.ok(!atStart.some((call) => call.rule.includes('PropertiesChanged')), 'no rule for units before one is followed');
    const unit = unitName(1);
    systemd.watch(unit);
    await systemd.stopUnit(unit);
    systemd.unwatch(unit);
    await systemd.stopUnit(unit);
    const calls = sent(bus).slice(atStart.length);
    assert.deepEqual(
      calls.map((call) => `${call.member}${call.rule.includes(pathRule(unit)) ? ' (its rule)' : ''}${call.reply ? '' : ' (no reply)'}`),
      ['AddMatch (its rule)', 'StopUnit', 'RemoveMatch (its rule) (no reply)', 'StopUnit'],
    );
  });

  it(`takes one rule for all units beyond ${UNIT_MATCH_LIMIT} followed, and each its own again once few are`, async () => {
    const units = Array.from({ length: UNIT_MATCH_LIMIT + 10 }, (_, index) => unitName(index));
    for (const unit of units) systemd.watch(unit);
    await until('the rule for all units', () => sent(bus).some((call) => call.member === 'AddMatch' && call.rule.includes(ALL_UNITS)));
    const added = sent(bus).filter((call) => call.member === 'AddMatch' && call.rule.includes("path='"));
    assert.equal(added.length, UNIT_MATCH_LIMIT, 'a rule each up to the limit, none after');
    // Down to a quarter of the limit: the units left get rules of their own, then the rule for all goes.
    const left = units.slice(0, UNIT_MATCH_LIMIT / 4);
    for (const unit of units.slice(UNIT_MATCH_LIMIT / 4)) systemd.unwatch(unit);
    await until('the rule for all units removed', () =>
      sent(bus).some((call) => call.member === 'RemoveMatch' && call.rule.includes(ALL_UNITS)),
    );
    const calls = sent(bus);
    const removedAll = calls.findIndex((call) => call.member === 'RemoveMatch' && call.rule.includes(ALL_UNITS));
    for (const unit of left) {
      const last = calls.findLastIndex((call) => call.rule.includes(pathRule(unit)));
      assert.ok(last >= 0 && last < removedAll && calls[last]?.member === 'AddMatch', `${unit} has its rule before the rule for all goes`);
    }
    // And a new unit has a rule of its own again.
    systemd.watch(unitName(100_000));
    await until('the new unit’s rule', () => sent(bus).some((call) => call.rule.includes(pathRule(unitName(100_000)))));
  });

  it(
    'takes the rule for all units when the bus refuses a unit’s, and says its changes may have gone unseen',
    { timeout: 10_000 },
    async () => {
      bus.refuseMatches = "path='";
      const missed = new Promise<void>((resolve) => systemd.once('signalsMissed', resolve));
      systemd.watch(unitName(7));
      await missed;
      assert.ok(sent(bus).some((call) => call.member === 'AddMatch' && call.rule.includes(ALL_UNITS)));
      // Followed from then on through the rule for all: no rule of its own is asked for.
      const before = sent(bus).length;
      systemd.watch(unitName(8));
      await systemd.stopUnit(unitName(8));
      assert.deepEqual(
        sent(bus)
          .slice(before)
          .map((call) => call.member),
        ['StopUnit'],
      );
    },
  );
});
