import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cgroupPathOf } from '../../src/systemd/cgroup-usage.js';
import { SWEEP_TURN_UNITS, UsageSampler } from '../../src/tasks/usage-sampler.js';

const SLICE = 'tessia-tasks.slice';
const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A unified cgroupfs holding `units`, each having used `usec` of CPU. */
function cgroups(units: string[], usec: number): string {
  const root = mkdtempSync(join(tmpdir(), 'tessia-sampler-'));
  roots.push(root);
  writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory pids');
  for (const unit of units) {
    const directory = join(root, cgroupPathOf(SLICE, unit));
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, 'cgroup.procs'), '1\n');
    writeFileSync(join(directory, 'cpu.stat'), `usage_usec ${usec}\n`);
  }
  return root;
}

describe('UsageSampler', () => {
  it('sweeps many units a few at a time, letting the event loop turn in between; a unit collected meanwhile is not read', async () => {
    const units = Array.from(
      { length: SWEEP_TURN_UNITS * 4 + 3 },
      (_, index) => `tessia-task-${index.toString(16).padStart(8, '0')}.service`,
    );
    const root = cgroups(units, 1);
    const sampler = new UsageSampler(SLICE, 3_600_000, root);
    for (const unit of units) sampler.follow(unit);
    for (const unit of units) writeFileSync(join(root, cgroupPathOf(SLICE, unit), 'cpu.stat'), 'usage_usec 2\n');
    const collected = units.at(-1) ?? '';
    const sweep = sampler.sweep();
    assert.equal(sampler.sweep(), sweep, 'one sweep at a time');
    // Runs after the sweep's second turn: the cgroups go, so what each unit keeps is its last read.
    await new Promise((resolve) => setImmediate(resolve));
    for (const unit of units) rmSync(join(root, cgroupPathOf(SLICE, unit)), { recursive: true });
    sampler.forget(collected);
    await sweep;
    const cpu = units.map((unit) => sampler.final(unit, null)?.cpuNsec);
    assert.deepEqual(
      cpu,
      units.map((unit, index) => (unit === collected ? undefined : index < SWEEP_TURN_UNITS * 2 ? 2000 : 1000)),
      'two turns read before the callback ran',
    );
    sampler.close();
  });

  it("reads a unit followed 'soon' once the work under way is done", async () => {
    const unit = 'tessia-task-0000000a.service';
    const root = cgroups([unit], 3);
    const sampler = new UsageSampler(SLICE, 3_600_000, root);
    sampler.follow(unit, 'soon');
    // Still in the same turn: the first read is not done yet, so a change now is what it reads.
    writeFileSync(join(root, cgroupPathOf(SLICE, unit), 'cpu.stat'), 'usage_usec 4\n');
    await new Promise((resolve) => setImmediate(resolve));
    rmSync(join(root, cgroupPathOf(SLICE, unit)), { recursive: true });
    assert.equal(sampler.final(unit, null)?.cpuNsec, 4000, 'read after the turn, kept once the cgroup is gone');
    sampler.close();
  });
});
