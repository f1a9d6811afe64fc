import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { StoreUnwritableError } from '../../src/tasks/store-errors.js';
import { StoreHealth } from '../../src/tasks/store-health.js';

const full = () =>
  new StoreUnwritableError('full', '/state', Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));

/** A health whose probe succeeds once `space` is set, and the lines it logged. */
function healthOf(delaysMs: number[] = [60_000]) {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const state = { space: false, probes: 0 };
  const health: StoreHealth = new StoreHealth(
    () => {
      state.probes += 1;
      if (!state.space) {
        const error = full();
        health.failed(error);
        throw error;
      }
      health.wrote();
    },
    pino(sink),
    delaysMs,
  );
  return { health, lines, state };
}

let open: StoreHealth[] = [];
afterEach(() => {
  for (const health of open) health.close();
  open = [];
});

describe('StoreHealth', () => {
  it('warns once at the first refused write of an episode, however many follow, and counts them all.', async () => {
    const { health, lines } = healthOf();
    open.push(health);
    assert.equal(health.writable, true);
    for (let i = 0; i < 50; i++) health.failed(full());
    await sleep(10);
    assert.equal(health.writable, false);
    assert.equal(health.failedWrites, 50);
    const warnings = lines.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1);
    assert.equal(lines.length, 1);
    assert.match(warnings[0]?.msg ?? '', /^no space left for the task store under \/state .*503 STORE_UNWRITABLE/);
  });

  it('ends the episode at the first write that succeeds: one line, and writable is emitted.', async () => {
    const { health, lines } = healthOf();
    open.push(health);
    health.failed(full());
    health.failed(full());
    const writable = once(health, 'writable');
    health.wrote();
    health.wrote();
    await writable;
    assert.equal(health.writable, true);
    const infos = lines.filter((line) => line.level === 30);
    assert.equal(infos.length, 1);
    assert.match(infos[0]?.msg ?? '', /takes writes again/);
    // A new episode is a new warning.
    health.failed(full());
    assert.equal(lines.filter((line) => line.level === 40).length, 2);
  });

  it('probes by itself during an episode, ever less often, and recovers with nobody writing once space returns.', async () => {
    const { health, state } = healthOf([5, 10, 20]);
    open.push(health);
    health.failed(full());
    await sleep(100);
    assert.equal(health.writable, false);
    // 5, 10, then every 20 ms: about 6 probes in 100 ms, not 20.
    assert.ok(state.probes >= 3 && state.probes <= 8, `${state.probes} probes`);
    const failedBefore = health.failedWrites;
    assert.equal(failedBefore, 1 + state.probes);
    state.space = true;
    // The probe's timer does not hold the process: this does, until the probe has run.
    const alive = setInterval(() => {}, 1000);
    await once(health, 'writable').finally(() => clearInterval(alive));
    assert.equal(health.writable, true);
    const probes = state.probes;
    await sleep(60);
    assert.equal(state.probes, probes, 'probed again once the store took writes');
  });

  it('stops probing when closed.', async () => {
    const { health, state } = healthOf([5]);
    health.failed(full());
    health.close();
    await sleep(30);
    assert.equal(state.probes, 0);
  });
});
