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
import { SystemdClient, UNIT_MATCH_LIMIT, UNIT_MATCH_NARROW_AT } from '../../src/systemd/client.js';
import { ALL_UNITS_CHANGES_RULE, unitChangesRule } from '../../src/systemd/match-rules.js';
import { unitObjectPath } from '../../src/systemd/unit-path.js';
import { ScriptedBus } from '../harness/scripted-bus.js';

const ALL_UNITS = ALL_UNITS_CHANGES_RULE;
const unitName = (index: number) => `tessia-task-${index.toString(16).padStart(8, '0')}.service`;
const pathRule = (unit: string) => unitChangesRule(unitObjectPath(unit));

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
  let previousAddress: string | undefined;

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tessia-matches-'));
    bus = await ScriptedBus.listen(join(directory, 'bus'));
    // Set for the whole test: the client connects again to the same address when its connection is dropped.
    previousAddress = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
    systemd = await SystemdClient.connect(() => true);
  });
  afterEach(async () => {
    if (previousAddress === undefined) delete process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    else process.env['DBUS_SYSTEM_BUS_ADDRESS'] = previousAddress;
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
    await until('the rule for all units', () => sent(bus).some((call) => call.member === 'AddMatch' && call.rule === ALL_UNITS));
    const added = sent(bus).filter((call) => call.member === 'AddMatch' && call.rule.includes("path='"));
    assert.equal(added.length, UNIT_MATCH_LIMIT, 'a rule each up to the limit, none after');
    // Down to UNIT_MATCH_NARROW_AT, those followed past the limit (no rule of their own yet): each
    // gets one, then the rule for all goes.
    const left = units.slice(-UNIT_MATCH_NARROW_AT);
    for (const unit of units.slice(0, -UNIT_MATCH_NARROW_AT)) systemd.unwatch(unit);
    await until('the rule for all units removed', () => sent(bus).some((call) => call.member === 'RemoveMatch' && call.rule === ALL_UNITS));
    const calls = sent(bus);
    const removedAll = calls.findIndex((call) => call.member === 'RemoveMatch' && call.rule === ALL_UNITS);
    const addedAll = calls.findIndex((call) => call.member === 'AddMatch' && call.rule === ALL_UNITS);
    // Once the rule for all is in, the units' own rules go (they count against the bus's limit)...
    const removedOwn = calls.filter((call, index) => index > addedAll && index < removedAll && call.member === 'RemoveMatch').length;
    assert.equal(removedOwn, UNIT_MATCH_LIMIT, 'the units’ own rules removed under the rule for all');
    // ...and each unit left has its own again before the rule for all goes.
    for (const unit of left) {
      const last = calls.filter((call, index) => index < removedAll && call.rule === pathRule(unit)).at(-1);
      assert.equal(last?.member, 'AddMatch', `${unit} has its rule before the rule for all goes`);
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
      assert.ok(sent(bus).some((call) => call.member === 'AddMatch' && call.rule === ALL_UNITS));
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

  it('gives a new connection the rules of the units followed, those watched while it is attached too', { timeout: 10_000 }, async () => {
    const units = [unitName(1), unitName(2), unitName(3)];
    for (const unit of units) systemd.watch(unit);
    const reconnected = new Promise<void>((resolve) => systemd.once('reconnected', resolve));
    const firstConnection = sent(bus).length;
    bus.dropClient();
    // While the new connection is being attached (its rules asked for), one more unit is followed and one let go.
    await until('the new connection', () =>
      sent(bus)
        .slice(firstConnection)
        .some((call) => call.member === 'Hello'),
    );
    systemd.watch(unitName(4));
    systemd.unwatch(unitName(3));
    await reconnected;
    await systemd.stopUnit(unitName(1));
    const calls = sent(bus).slice(firstConnection);
    const has = (unit: string) => {
      const rules = calls.filter((call) => call.rule === pathRule(unit));
      return rules.at(-1)?.member === 'AddMatch';
    };
    assert.ok(has(unitName(1)) && has(unitName(2)) && has(unitName(4)), 'the units followed have their rules on the new connection');
    assert.ok(!has(unitName(3)), 'the unit let go has none');
  });

  it('falls back to the rule for all units when a new connection’s rules are refused, and attaches', { timeout: 10_000 }, async () => {
    systemd.watch(unitName(1));
    await until('its rule', () => sent(bus).some((call) => call.rule === pathRule(unitName(1))));
    bus.refuseMatches = "path='";
    const reconnected = new Promise<void>((resolve) => systemd.once('reconnected', resolve));
    const firstConnection = sent(bus).length;
    bus.dropClient();
    await reconnected;
    assert.ok(
      sent(bus)
        .slice(firstConnection)
        .some((call) => call.member === 'AddMatch' && call.rule === ALL_UNITS),
    );
  });

  it(
    'asks once for a unit watched, let go and watched again before the bus answered, and removes it once',
    { timeout: 10_000 },
    async () => {
      const unit = unitName(9);
      bus.holdMatches = pathRule(unit);
      systemd.watch(unit);
      systemd.unwatch(unit);
      systemd.watch(unit);
      await until('its rule asked for', () => sent(bus).some((call) => call.rule === pathRule(unit)));
      bus.holdMatches = null;
      bus.releaseHeld();
      // Answered: followed again, so its rule stays until it is let go.
      await systemd.stopUnit(unit);
      systemd.unwatch(unit);
      await systemd.stopUnit(unit);
      assert.deepEqual(
        sent(bus)
          .filter((call) => call.rule === pathRule(unit))
          .map((call) => call.member),
        ['AddMatch', 'RemoveMatch'],
      );
    },
  );

  it('narrows only once the rule for all units is in place', { timeout: 20_000 }, async () => {
    const units = Array.from({ length: UNIT_MATCH_LIMIT + 1 }, (_, index) => unitName(index));
    for (const unit of units.slice(0, UNIT_MATCH_LIMIT)) systemd.watch(unit);
    await until(
      'each its rule',
      () => sent(bus).filter((call) => call.member === 'AddMatch' && call.rule.includes("path='")).length === UNIT_MATCH_LIMIT,
    );
    await systemd.stopUnit(unitName(0));
    bus.holdMatches = ALL_UNITS;
    systemd.watch(units.at(-1) ?? '');
    await until('the rule for all asked for', () => sent(bus).some((call) => call.rule === ALL_UNITS));
    // Few followed again while the rule for all is not answered: nothing is removed yet.
    for (const unit of units.slice(UNIT_MATCH_NARROW_AT)) systemd.unwatch(unit);
    await systemd.stopUnit(unitName(0));
    assert.ok(
      !sent(bus).some((call) => call.member === 'RemoveMatch' && call.rule === ALL_UNITS),
      'the rule for all is not removed before it is in place',
    );
    bus.holdMatches = null;
    bus.releaseHeld();
    await until('the rule for all units removed', () => sent(bus).some((call) => call.member === 'RemoveMatch' && call.rule === ALL_UNITS));
    const calls = sent(bus);
    const removedAll = calls.findIndex((call) => call.member === 'RemoveMatch' && call.rule === ALL_UNITS);
    for (const unit of units.slice(0, UNIT_MATCH_NARROW_AT)) {
      const last = calls.filter((call, index) => index < removedAll && call.rule === pathRule(unit)).at(-1);
      assert.equal(last?.member, 'AddMatch', `${unit} has its rule before the rule for all goes`);
    }
  });
});
