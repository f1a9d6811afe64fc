/** Whom the runner believes on the bus: systemd's signals from its current owner, NameOwnerChanged from the bus. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifySignal, type IncomingSignal } from '../../src/systemd/signals.js';

const SYSTEMD_OWNER = ':1.3';
const INTRUDER = ':1.77';
const UNIT_PATH = '/org/freedesktop/systemd1/unit/tessia_2dtask_2da1b2c3d4_2eservice';

const jobRemoved = (sender: string): IncomingSignal => ({
  sender,
  path: '/org/freedesktop/systemd1',
  interface: 'org.freedesktop.systemd1.Manager',
  member: 'JobRemoved',
  body: [42, '/org/freedesktop/systemd1/job/42', 'tessia-task-a1b2c3d4.service', 'failed'],
});
const propertiesChanged = (sender: string): IncomingSignal => ({
  sender,
  path: UNIT_PATH,
  interface: 'org.freedesktop.DBus.Properties',
  member: 'PropertiesChanged',
  body: ['org.freedesktop.systemd1.Unit', { ActiveState: { value: 'failed' } }, []],
});
const nameOwnerChanged = (sender: string, name = 'org.freedesktop.systemd1', newOwner = ':1.99'): IncomingSignal => ({
  sender,
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
  member: 'NameOwnerChanged',
  body: [name, SYSTEMD_OWNER, newOwner],
});

describe('classifySignal', () => {
  it("believes systemd's JobRemoved and PropertiesChanged from its current owner.", () => {
    assert.deepEqual(classifySignal(jobRemoved(SYSTEMD_OWNER), SYSTEMD_OWNER), {
      kind: 'jobRemoved',
      unitName: 'tessia-task-a1b2c3d4.service',
      result: 'failed',
    });
    assert.deepEqual(classifySignal(propertiesChanged(SYSTEMD_OWNER), SYSTEMD_OWNER), {
      kind: 'propertiesChanged',
      path: UNIT_PATH,
      interface: 'org.freedesktop.systemd1.Unit',
      changed: { ActiveState: { value: 'failed' } },
    });
  });

  const forgeries: [string, IncomingSignal, string][] = [
    ['JobRemoved from another connection', jobRemoved(INTRUDER), 'JobRemoved'],
    ['PropertiesChanged from another connection', propertiesChanged(INTRUDER), 'PropertiesChanged'],
    ['NameOwnerChanged from another connection', nameOwnerChanged(INTRUDER), 'NameOwnerChanged'],
    ['a signal claiming the well-known name as its sender', jobRemoved('org.freedesktop.systemd1'), 'JobRemoved'],
    ['a signal without a sender', jobRemoved(''), 'JobRemoved'],
    ['a made-up member, labelled "other"', { ...jobRemoved(INTRUDER), member: 'X'.repeat(300) }, 'other'],
  ];
  for (const [what, signal, member] of forgeries) {
    it(`drops as forged: ${what}.`, () => {
      assert.deepEqual(classifySignal(signal, SYSTEMD_OWNER), { kind: 'forged', member });
    });
  }

  it('believes no one while the owner of systemd is unknown.', () => {
    assert.deepEqual(classifySignal(jobRemoved(SYSTEMD_OWNER), null), { kind: 'forged', member: 'JobRemoved' });
    assert.deepEqual(classifySignal(propertiesChanged(''), null), { kind: 'forged', member: 'PropertiesChanged' });
  });

  it('learns a new owner of systemd, or none, only from the bus.', () => {
    assert.deepEqual(classifySignal(nameOwnerChanged('org.freedesktop.DBus'), SYSTEMD_OWNER), {
      kind: 'systemdOwnerChanged',
      owner: ':1.99',
    });
    assert.deepEqual(classifySignal(nameOwnerChanged('org.freedesktop.DBus', 'org.freedesktop.systemd1', ''), SYSTEMD_OWNER), {
      kind: 'systemdOwnerChanged',
      owner: null,
    });
    // The old owner's signals are not believed once the bus said it is someone else.
    assert.equal(classifySignal(jobRemoved(SYSTEMD_OWNER), ':1.99').kind, 'forged');
  });

  it("ignores, without calling them forged, the bus's other signals and NameOwnerChanged of other names.", () => {
    const nameAcquired = { ...nameOwnerChanged('org.freedesktop.DBus'), member: 'NameAcquired', body: [':1.50'] };
    assert.deepEqual(classifySignal(nameAcquired, SYSTEMD_OWNER), { kind: 'ignored' });
    assert.deepEqual(classifySignal(nameOwnerChanged('org.freedesktop.DBus', 'org.example.Other'), SYSTEMD_OWNER), { kind: 'ignored' });
    const elsewhere = { ...nameOwnerChanged('org.freedesktop.DBus'), path: '/elsewhere' };
    assert.deepEqual(classifySignal(elsewhere, SYSTEMD_OWNER), { kind: 'ignored' });
    // Only the bus announces owners: systemd saying so is not acted on (nor is it someone else's forgery).
    assert.deepEqual(classifySignal(nameOwnerChanged(SYSTEMD_OWNER), SYSTEMD_OWNER), { kind: 'ignored' });
  });

  it("ignores systemd's own signals it does not act on, and those whose body is not of their signature.", () => {
    const unitNew = { ...jobRemoved(SYSTEMD_OWNER), member: 'UnitNew', body: ['x.service', '/org/freedesktop/systemd1/unit/x'] };
    assert.deepEqual(classifySignal(unitNew, SYSTEMD_OWNER), { kind: 'ignored' });
    assert.deepEqual(classifySignal({ ...jobRemoved(SYSTEMD_OWNER), body: [42] }, SYSTEMD_OWNER), { kind: 'ignored' });
    assert.deepEqual(classifySignal({ ...propertiesChanged(SYSTEMD_OWNER), body: ['iface', null, []] }, SYSTEMD_OWNER), {
      kind: 'ignored',
    });
  });
});
