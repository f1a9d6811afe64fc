/**
 * The runner's stops, kills and resets through the privileged starter, with the runner's own call
 * when the starter cannot: which is used when, and which errors are systemd's answer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { StarterClient, StarterError } from '../../src/starter/client.js';
import type { UnitAction } from '../../src/starter/protocol.js';
import { UnitControlByStarter, unitControlFor } from '../../src/starter/unit-control.js';
import { DISCONNECTED, NO_SUCH_UNIT, SystemdError, type UnitControl } from '../../src/systemd/client.js';

const UNIT = 'tessia-task-0000abcd.service';

function setUp(starterSays: () => void | Promise<void> = () => {}) {
  const calls: string[] = [];
  const starter = {
    async controlUnit(action: UnitAction, taskId: string) {
      calls.push(`starter ${action} ${taskId}`);
      await starterSays();
    },
  };
  const own: UnitControl = {
    async stopUnit(unit) {
      calls.push(`own stop ${unit}`);
    },
    async killUnit(unit, signal) {
      calls.push(`own kill ${signal} ${unit}`);
    },
    async resetFailedUnit(unit) {
      calls.push(`own reset-failed ${unit}`);
    },
  };
  return { calls, own, control: new UnitControlByStarter(starter, own, pino({ level: 'silent' }), 200, 300) };
}

describe('UnitControlByStarter', () => {
  it('has the starter stop, kill (SIGKILL) and reset a task unit, by its task id, and makes no call of its own.', async () => {
    const { calls, control } = setUp();
    await control.stopUnit(UNIT);
    await control.killUnit(UNIT, 9);
    await control.resetFailedUnit(UNIT);
    assert.deepEqual(calls, ['starter stop 0000abcd', 'starter kill 0000abcd', 'starter reset-failed 0000abcd']);
  });

  it('makes its own call for another signal than SIGKILL, and for a unit that is not a task unit.', async () => {
    const { calls, control } = setUp();
    await control.killUnit(UNIT, 15);
    await control.stopUnit('tessia-check-0123456789abcdef.service');
    assert.deepEqual(calls, [`own kill 15 ${UNIT}`, 'own stop tessia-check-0123456789abcdef.service']);
  });

  it('makes its own call when the starter cannot: unreachable, busy, an older one, lost before its answer.', async () => {
    for (const refusal of [
      new StarterError('tessia.Starter.Unreachable', 'not reachable'),
      new StarterError('tessia.Starter.InvalidRequest', 'invalid request: op'),
      new StarterError('tessia.Starter.Busy', '64 unit actions are under way already'),
      new SystemdError('lost the privileged starter', DISCONNECTED),
    ]) {
      const { calls, control } = setUp(() => {
        throw refusal;
      });
      await control.stopUnit(UNIT);
      assert.deepEqual(calls, ['starter stop 0000abcd', `own stop ${UNIT}`], refusal.message);
    }
  });

  it("passes systemd's own answer on, as its own call would get it, and does not call again.", async () => {
    const { calls, control } = setUp(() => {
      throw new SystemdError('Unit tessia-task-0000abcd.service not loaded.', NO_SUCH_UNIT);
    });
    await assert.rejects(control.stopUnit(UNIT), (error: unknown) => error instanceof SystemdError && error.dbusName === NO_SUCH_UNIT);
    assert.deepEqual(calls, ['starter stop 0000abcd']);
  });

  it('makes its own call when the starter does not answer in time, and for a while after; a late answer is no failure.', async () => {
    let answerLate = () => {};
    let silent = true;
    const { calls, control } = setUp(() => (silent ? new Promise<void>((resolve) => (answerLate = () => resolve())) : undefined));
    await control.killUnit(UNIT, 9);
    // The pause (300 ms by performance.now()) began before this.
    const pausedBy = performance.now();
    assert.deepEqual(calls, ['starter kill 0000abcd', `own kill 9 ${UNIT}`]);
    answerLate();
    // Silent once: not asked again for a while, so that no stop waits for it meanwhile.
    await control.stopUnit(UNIT);
    assert.deepEqual(calls.slice(2), [`own stop ${UNIT}`]);
    // Then asked again, once the pause is over: waited for by the same clock (a timer counts from the
    // event loop's cached time, and may end before it).
    silent = false;
    while (performance.now() < pausedBy + 300) await sleep(10);
    await control.stopUnit(UNIT);
    assert.deepEqual(calls.slice(3), ['starter stop 0000abcd']);
  });

  it('is used by an unprivileged runner with a starter; a root runner, or one without a starter, keeps its own calls.', () => {
    const { own } = setUp();
    const log = pino({ level: 'silent' });
    const starter = new StarterClient('/nonexistent/starter.sock', () => 'f'.repeat(64));
    assert.ok(unitControlFor(starter, own, log, 998) instanceof UnitControlByStarter);
    assert.equal(unitControlFor(starter, own, log, 0), own);
    assert.equal(unitControlFor({ start: () => 'done' }, own, log, 998), own);
    starter.close();
  });
});
