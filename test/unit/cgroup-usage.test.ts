import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cgroupPathOf, readCgroupUsage } from '../../src/systemd/cgroup-usage.js';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A cgroupfs of files as the kernel shows them: `files` by path below the root. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'tessia-cgroup-'));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const UNIT = '/tessia.slice/tessia-tasks.slice/tessia-task-0a0a0a0a.service';
const NOW = new Date('2026-11-28T12:00:00.000Z');

describe('cgroupPathOf', () => {
  it('nests a slice in the slices its name implies, as systemd does', () => {
    assert.equal(cgroupPathOf('tessia-tasks.slice', 'tessia-task-0a0a0a0a.service'), UNIT);
    assert.equal(cgroupPathOf('mine.slice', 'x.service'), '/mine.slice/x.service');
  });
});

describe('readCgroupUsage', () => {
  it('reads the unified hierarchy (cgroup v2): cpu.stat, memory.current and .peak, io.stat summed over devices, pids', () => {
    const root = tree({
      'cgroup.controllers': 'cpu io memory pids',
      [`${UNIT}/cgroup.procs`]: '123\n',
      [`${UNIT}/cpu.stat`]: 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
      [`${UNIT}/memory.current`]: '4096\n',
      [`${UNIT}/memory.peak`]: '8192\n',
      [`${UNIT}/io.stat`]: '8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=10 wbytes=20 rios=1 wios=1\n',
      [`${UNIT}/pids.current`]: '3\n',
    });
    assert.deepEqual(readCgroupUsage(UNIT, NOW, root), {
      cpuNsec: 1_500_000,
      memoryBytes: 4096,
      memoryPeakBytes: 8192,
      ioReadBytes: 110,
      ioWriteBytes: 220,
      tasks: 3,
      sampledAt: NOW.toISOString(),
    });
  });

  it("reads the legacy hierarchy (v1, one controller each), CPU from the hybrid layout's unified tree when cpuacct has none", () => {
    const root = tree({
      [`systemd${UNIT}/cgroup.procs`]: '123\n',
      [`unified${UNIT}/cpu.stat`]: 'usage_usec 2000\n',
      [`memory${UNIT}/memory.usage_in_bytes`]: '1024\n',
      [`memory${UNIT}/memory.max_usage_in_bytes`]: '65536\n',
      [`blkio${UNIT}/blkio.throttle.io_service_bytes`]: '8:0 Read 7\n8:0 Write 9\n8:0 Total 16\nTotal 16\n',
      [`pids${UNIT}/pids.current`]: '2\n',
    });
    assert.deepEqual(readCgroupUsage(UNIT, NOW, root), {
      cpuNsec: 2_000_000,
      memoryBytes: 1024,
      memoryPeakBytes: 65536,
      ioReadBytes: 7,
      ioWriteBytes: 9,
      tasks: 2,
      sampledAt: NOW.toISOString(),
    });
  });

  it('gives null figures where a counter is missing (memory.peak before Linux 5.19), and nothing once the cgroup is gone', () => {
    const root = tree({ 'cgroup.controllers': '', [`${UNIT}/cgroup.procs`]: '', [`${UNIT}/memory.current`]: '10\n' });
    const usage = readCgroupUsage(UNIT, NOW, root);
    assert.equal(usage?.memoryBytes, 10);
    assert.equal(usage.memoryPeakBytes, null);
    assert.equal(usage.cpuNsec, null);
    assert.equal(usage.ioReadBytes, null);
    assert.equal(readCgroupUsage('/tessia.slice/tessia-tasks.slice/tessia-task-ffffffff.service', NOW, root), null);
  });
});
