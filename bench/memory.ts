/**
 * What each running task costs in the runner's memory (issue 17): a runner of its own, as the
 * package runs it, with N tasks running (N = 0, 100, 1000 by default; tasks that wait on a FIFO, no
 * CPU), its RSS split by kind at each N, V8's heap from a diagnostic report, and a heap snapshot at
 * the smallest and largest N, summarised: the live heap by constructor, what grew per task, and
 * which objects hold that growth.
 *
 * The snapshot and the report are node's own (--heapsnapshot-signal, --report-on-signal), asked for
 * with a signal: flags of this benchmark's runner only, never of the package's unit.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client } from '../src/embedded/api-client.js';
import { startRunnerService, type RunnerService } from '../src/embedded/runner-service.js';
import { TASK_UNIT_GLOB } from '../src/tasks/unit-names.js';
import { cpuSeconds, mainPid } from './processes.js';
import {
  groupGrowth,
  groupTotals,
  growthHolders,
  parseHeapSnapshot,
  totalSelfBytes,
  type HeapGraph,
  type RawHeapSnapshot,
} from './heap-snapshot.js';
import { inParallel, round } from './stats.js';

const GATE_DIR = '/run/tessia-bench';
const GATE = `${GATE_DIR}/memory-gate`;
const MACHINE = 'bench-memory-hold';

export const MEMORY_BENCH_MACHINES = {
  // As bench/scale.ts's bench-hold, on a gate of its own: waits with no CPU, then exits 3.
  [MACHINE]: { exec: ['/bin/sh', '-c', `read line < ${GATE}; exit 3`] },
};

const CLIENTS = 16;
/** The runner's keep-alive timeout (src/listener.ts). */
const KEEP_ALIVE_MS = 5000;
/** The snapshot's signal and the report's: neither is one the runner handles (SIGHUP, SIGTERM, SIGINT). */
const SNAPSHOT_SIGNAL = 'SIGUSR2';
const REPORT_SIGNAL = 'SIGURG';
/**
 * How long the runner is left idle before the settled figures: V8's memory reducer shrinks the heap
 * some seconds (8 in V8 11) after the allocation rate drops. (Default: 20 s;
 * TESSIA_BENCH_MEMORY_SETTLE_SEC)
 */
const SETTLE_SEC = Number(process.env['TESSIA_BENCH_MEMORY_SETTLE_SEC'] ?? 20);

/** Resident memory of the runner's main process, in bytes, by kind (/proc/PID/status, smaps). */
export interface ResidentMemory {
  rss: number;
  /** Anonymous pages: V8's heap, malloc's arenas, thread stacks. */
  anon: number;
  /** Mapped files: node's binary, shared libraries, native addons. */
  file: number;
  /** glibc malloc's main arena (the `[heap]` mapping); other arenas are anonymous mappings. */
  brkHeap: number;
  peak: number;
}

/** V8's heap (node's diagnostic report): what it has committed and what is in use, by space. */
export interface V8Heap {
  committed: number;
  used: number;
  spaces: Record<string, { committed: number; used: number }>;
  /** libuv handles (timers, sockets, …) alive. */
  handles: number;
}

/** The starts that brought the runner to a point: a knob that saves memory must not cost them. */
export interface StartCost {
  count: number;
  perSecond: number;
  /** The runner's CPU (user + system) a start, in ms. */
  runnerCpuMsEach: number;
}

export interface MemoryPoint {
  running: number;
  starts: StartCost;
  /** `phase`: 3 s after the last start (what a burst leaves), or settled (SETTLE_SEC later, idle). */
  phase: 'after starts' | 'settled';
  resident: ResidentMemory;
  v8: V8Heap;
}

export interface MemoryVariant {
  name: string;
  nodeFlags: string[];
  env: Record<string, string>;
  points: MemoryPoint[];
  /** (RSS at the largest N − RSS at 0) / N, in bytes; and the same for V8's used heap. */
  perTask: { rss: number; anon: number; v8Used: number; v8Committed: number };
  snapshot?: SnapshotSummary;
}

export interface SnapshotSummary {
  running: number;
  liveHeapBytes: { atZero: number; atLargest: number; perTask: number };
  /** V8's heap right after each snapshot's full GC (smallest N, largest N). */
  v8AfterFullGc: V8Heap[];
  /** The largest groups at the largest N. */
  largest: { group: string; count: number; selfBytes: number }[];
  /** Per running task: objects and bytes added, by constructor. */
  growthPerTask: { group: string; count: number; selfBytes: number }[];
  /** Per running task: retained bytes grown, by the object that holds them. */
  holdersPerTask: { path: string; group: string; retainedBytes: number }[];
}

export interface MemoryBenchResult {
  sizes: number[];
  variants: MemoryVariant[];
}

/**
 * `variants`: runner set-ups to compare, each a runner of its own; then one more runner of the first
 * set-up takes the heap snapshots (a snapshot leaves megabytes in malloc's arena that the figures
 * after it would count). TESSIA_BENCH_MEMORY_SIZES (default 0,100,1000) and
 * TESSIA_BENCH_MEMORY_VARIANTS (a JSON list of {name, nodeFlags, env}; default: the package's flags
 * alone) size it; TESSIA_BENCH_MEMORY_SNAPSHOTS=0 skips the snapshots.
 */
export async function benchMemory(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  packageSetUp: { nodeFlags: string[]; env: Record<string, string> },
  starter: boolean,
): Promise<MemoryBenchResult> {
  const sizes = (process.env['TESSIA_BENCH_MEMORY_SIZES'] ?? '0,100,1000')
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
  const variants = process.env['TESSIA_BENCH_MEMORY_VARIANTS']
    ? (JSON.parse(process.env['TESSIA_BENCH_MEMORY_VARIANTS']) as Variant[])
    : [{ name: 'package', ...packageSetUp }];
  mkdirSync(`${systemd.root}${GATE_DIR}`, { recursive: true });
  const results: MemoryVariant[] = [];
  for (const variant of variants) {
    const points: MemoryPoint[] = [];
    await withTasksRunning(config, systemd, starter, variant, sizes, log, async (size, runner, pid, dir, starts) => {
      for (const phase of ['after starts', 'settled'] as const) {
        if (phase === 'settled') await sleep(SETTLE_SEC * 1000);
        const resident = residentMemory(systemd, pid);
        const v8 = await diagnosticReport(systemd, runner, pid, dir);
        points.push({ running: size, starts, phase, resident, v8 });
        log(
          `memory [${variant.name}] ${size} running, ${phase}: RSS ${mib(resident.rss)} MiB (anon ${mib(resident.anon)}, file ${mib(resident.file)}, ` +
            `malloc [heap] ${mib(resident.brkHeap)}), V8 committed ${mib(v8.committed)} MiB, used ${mib(v8.used)} MiB, ${v8.handles} libuv handles`,
        );
      }
    });
    results.push({ ...variant, points, perTask: perTask(points) });
  }
  const [first] = results;
  const ends = [sizes[0] ?? 0, sizes[sizes.length - 1] ?? 0];
  if (first && process.env['TESSIA_BENCH_MEMORY_SNAPSHOTS'] !== '0' && ends[1]! > ends[0]!) {
    const graphs: { running: number; graph: HeapGraph }[] = [];
    const afterGc: V8Heap[] = [];
    await withTasksRunning(config, systemd, starter, first, ends, log, async (size, runner, pid, dir) => {
      const before = await diagnosticReport(systemd, runner, pid, dir);
      graphs.push({ running: size, graph: await heapSnapshot(systemd, runner, pid, dir) });
      // A snapshot begins with a full garbage collection: V8's heap right after it is the live one.
      const after = await diagnosticReport(systemd, runner, pid, dir);
      afterGc.push(after);
      log(
        `memory: heap snapshot with ${size} running taken; V8 used ${mib(before.used)} MiB before it, ${mib(after.used)} MiB after its full GC ` +
          `(committed ${mib(before.committed)} → ${mib(after.committed)} MiB)`,
      );
    });
    const [low, high] = graphs;
    if (low && high) first.snapshot = { ...summarise(low, high), v8AfterFullGc: afterGc };
  }
  printTable(log, results);
  return { sizes, variants: results };
}

type Variant = Omit<MemoryVariant, 'points' | 'perTask' | 'snapshot'>;

/**
 * A runner of its own, with each of `sizes` (ascending) tasks running in turn: `atEach` runs once
 * they all run and what their starts left (timers, sockets, garbage) has settled. Then every task is
 * released and the runner stopped.
 */
async function withTasksRunning(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  starter: boolean,
  variant: Variant,
  sizes: number[],
  log: (line: string) => void,
  /** `running`: the tasks running (fewer than the size when starts failed). */
  atEach: (running: number, runner: RunnerService, pid: number, dir: string, starts: StartCost) => Promise<void>,
): Promise<void> {
  const dir = `${GATE_DIR}/memory-${process.pid}-${variant.name.replace(/[^A-Za-z0-9-]/g, '_')}`;
  mkdirSync(`${systemd.root}${dir}`, { recursive: true });
  const nodeFlags = [
    ...variant.nodeFlags,
    `--heapsnapshot-signal=${SNAPSHOT_SIGNAL}`,
    '--report-on-signal',
    `--report-signal=${REPORT_SIGNAL}`,
    `--diagnostic-dir=${dir}`,
    `--report-directory=${dir}`,
  ];
  makeGate(systemd);
  const runner = await startRunnerService(config, { nodeFlags, env: variant.env, starter });
  const api = client(runner.baseUrl);
  const ids: string[] = [];
  try {
    for (const size of sizes) {
      const more = size - ids.length;
      const failures: string[] = [];
      const pid = await mainPid(systemd, runner.unit);
      const [cpuBefore, began] = [cpuSeconds(systemd, pid), performance.now()];
      await inParallel(
        Array.from({ length: more }, (_, i) => i),
        CLIENTS,
        async () => {
          const reply = await api.post<{ taskId: string; state: string }>('/v1/tasks', { machine: MACHINE, parameters: null });
          if (reply.status === 201 && reply.body.state === 'running') ids.push(reply.body.taskId);
          else failures.push(`${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`);
        },
      );
      // A start refused on a loaded machine is said, not fatal: the figures are for the tasks running.
      if (failures.length > 0) log(`memory: ${failures.length} of ${more} starts failed, e.g. ${failures[0]}`);
      await sleep(3000);
      const starts: StartCost = {
        count: more,
        perSecond: more === 0 ? 0 : round((more * 1000) / (performance.now() - began)),
        runnerCpuMsEach: more === 0 ? 0 : round(((cpuSeconds(systemd, pid) - cpuBefore) * 1000) / more, 2),
      };
      await atEach(ids.length, runner, pid, dir, starts);
    }
  } finally {
    openGate(systemd);
    await waitAllEnded(runner, ids);
    // Until the runner has let systemd collect them: the next runner would find them at its start.
    await waitUnitsGone(systemd);
    await runner.stop();
    rmSync(`${systemd.root}${dir}`, { recursive: true, force: true });
  }
}

/** (Largest N − smallest N) / tasks added, in bytes, settled. */
function perTask(points: MemoryPoint[]): MemoryVariant['perTask'] {
  const settled = points.filter((point) => point.phase === 'settled');
  const first = settled[0] as MemoryPoint;
  const last = settled[settled.length - 1] as MemoryPoint;
  const added = Math.max(1, last.running - first.running);
  return {
    rss: Math.round((last.resident.rss - first.resident.rss) / added),
    anon: Math.round((last.resident.anon - first.resident.anon) / added),
    v8Used: Math.round((last.v8.used - first.v8.used) / added),
    v8Committed: Math.round((last.v8.committed - first.v8.committed) / added),
  };
}

function summarise(
  low: { running: number; graph: HeapGraph },
  high: { running: number; graph: HeapGraph },
): Omit<SnapshotSummary, 'v8AfterFullGc'> {
  const per = high.running - low.running;
  const [atZero, atLargest] = [totalSelfBytes(low.graph), totalSelfBytes(high.graph)];
  const rounded = <T extends { selfBytes: number; count: number }>(total: T) => ({
    ...total,
    count: round(total.count, 2),
    selfBytes: Math.round(total.selfBytes),
  });
  return {
    running: high.running,
    liveHeapBytes: { atZero, atLargest, perTask: Math.round((atLargest - atZero) / per) },
    largest: groupTotals(high.graph).slice(0, 15).map(rounded),
    growthPerTask: groupGrowth(low.graph, high.graph, per).slice(0, 25).map(rounded),
    // A holder worth naming holds at least 16 bytes a task.
    holdersPerTask: growthHolders(low.graph, high.graph, per, 16 * per)
      .slice(0, 20)
      .map((holder) => ({ ...holder, retainedBytes: Math.round(holder.retainedBytes) })),
  };
}

function printTable(log: (line: string) => void, variants: MemoryVariant[]): void {
  log(
    'memory: variant | running | starts/s, runner CPU ms each | when | RSS MiB | anon | file | malloc [heap] | V8 committed | V8 used | handles',
  );
  for (const variant of variants) {
    for (const point of variant.points) {
      const { resident, v8 } = point;
      log(
        `memory: ${variant.name} | ${point.running} | ${point.starts.perSecond}/s, ${point.starts.runnerCpuMsEach} ms | ${point.phase} | ${mib(resident.rss)} | ${mib(resident.anon)} | ${mib(resident.file)} | ` +
          `${mib(resident.brkHeap)} | ${mib(v8.committed)} | ${mib(v8.used)} | ${v8.handles}`,
      );
    }
    const { perTask } = variant;
    log(
      `memory: ${variant.name} per running task, settled: RSS ${perTask.rss} B (anon ${perTask.anon}), V8 used ${perTask.v8Used} B, committed ${perTask.v8Committed} B`,
    );
    const snapshot = variant.snapshot;
    if (!snapshot) continue;
    log(
      `memory: live heap (snapshot) ${mib(snapshot.liveHeapBytes.atZero)} MiB at 0, ${mib(snapshot.liveHeapBytes.atLargest)} MiB at ` +
        `${snapshot.running}: ${snapshot.liveHeapBytes.perTask} B a task`,
    );
    log('memory: per running task, by constructor: objects | bytes');
    for (const group of snapshot.growthPerTask.slice(0, 15)) log(`memory:   ${group.group} | ${group.count} | ${group.selfBytes}`);
    log('memory: per running task, retained by: bytes');
    for (const holder of snapshot.holdersPerTask.slice(0, 12)) log(`memory:   ${holder.path} | ${holder.retainedBytes}`);
  }
}

const mib = (bytes: number) => round(bytes / 2 ** 20);

function residentMemory(systemd: PrivateSystemd, pid: number): ResidentMemory {
  const status = readFileSync(`${systemd.root}/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  // The [heap] mapping's own Rss line follows its header in smaps.
  const smaps = readFileSync(`${systemd.root}/proc/${pid}/smaps`, 'utf8');
  const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
  return {
    rss: kib('VmRSS'),
    anon: kib('RssAnon'),
    file: kib('RssFile'),
    brkHeap: Number(heap?.[1] ?? 0) * 1024,
    peak: kib('VmHWM'),
  };
}

interface NodeReport {
  javascriptHeap: {
    totalMemory: number;
    usedMemory: number;
    heapSpaces: Record<string, { memorySize: number; used: number }>;
  };
  libuv: unknown[];
}

async function diagnosticReport(systemd: PrivateSystemd, runner: RunnerService, pid: number, dir: string): Promise<V8Heap> {
  const file = await afterSignal(systemd, runner, pid, dir, REPORT_SIGNAL, '.json');
  const report = JSON.parse(readFileSync(file, 'utf8')) as NodeReport;
  rmSync(file);
  const heap = report.javascriptHeap;
  return {
    committed: heap.totalMemory,
    used: heap.usedMemory,
    spaces: Object.fromEntries(
      Object.entries(heap.heapSpaces).map(([name, space]) => [name, { committed: space.memorySize, used: space.used }]),
    ),
    handles: report.libuv.length,
  };
}

async function heapSnapshot(systemd: PrivateSystemd, runner: RunnerService, pid: number, dir: string): Promise<HeapGraph> {
  const file = await afterSignal(systemd, runner, pid, dir, SNAPSHOT_SIGNAL, '.heapsnapshot');
  const graph = parseHeapSnapshot(JSON.parse(readFileSync(file, 'utf8')) as RawHeapSnapshot);
  rmSync(file);
  return graph;
}

/**
 * Signals the runner and waits for the file node writes in answer: node writes it on the main
 * thread, so once the API answers again and the file exists, it is complete.
 */
async function afterSignal(
  systemd: PrivateSystemd,
  runner: RunnerService,
  pid: number,
  dir: string,
  signal: string,
  suffix: string,
): Promise<string> {
  const outside = `${systemd.root}${dir}`;
  const before = new Set(readdirSync(outside));
  const sent = await systemd.run(['kill', '-s', signal.replace(/^SIG/, ''), String(pid)]);
  if (sent.code !== 0) throw new Error(`kill -s ${signal} ${pid}: ${sent.stderr}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const name = readdirSync(outside).find((entry) => entry.endsWith(suffix) && !before.has(entry));
    if (name !== undefined) {
      // Answered only once the main thread is done writing (a refused connection meanwhile: again).
      await fetch(`${runner.baseUrl}/`).catch(() => undefined);
      const path = `${outside}/${name}`;
      const size = statSync(path).size;
      await sleep(200);
      if (existsSync(path) && statSync(path).size === size) {
        // The server closes the connections that sat idle past its keep-alive timeout (5 s) while
        // it wrote: until it has, a client could send a request on one it is closing.
        await sleep(KEEP_ALIVE_MS + 1000);
        return path;
      }
    }
    if (Date.now() > deadline) throw new Error(`no ${suffix} file in ${dir} after ${signal}:\n${(await runner.journal()).slice(-3000)}`);
    await sleep(100);
  }
}

async function waitAllEnded(runner: RunnerService, ids: string[]): Promise<void> {
  const api = client(runner.baseUrl);
  const deadline = Date.now() + 300_000;
  const wanted = new Set(ids);
  while (Date.now() < deadline) {
    const active = (await api.getAll<{ taskId: string; state: string }>('/v1/tasks')).filter(
      (task) => wanted.has(task.taskId) && !['exited', 'lost'].includes(task.state),
    );
    if (active.length === 0) return;
    await sleep(200);
  }
}

async function waitUnitsGone(systemd: PrivateSystemd): Promise<void> {
  for (let waited = 0; waited < 120; waited++) {
    const listed = await systemd.systemctl('list-units', '--all', '--plain', '--no-legend', TASK_UNIT_GLOB);
    if (listed.stdout.trim() === '') return;
    await sleep(500);
  }
}

function makeGate(systemd: PrivateSystemd): void {
  const path = `${systemd.root}${GATE}`;
  rmSync(path, { force: true });
  execFileSync('mkfifo', ['-m', '0644', path]);
}

/** Every task blocked reading the FIFO sees end-of-file once a writer opens and closes it. */
function openGate(systemd: PrivateSystemd): void {
  try {
    closeSync(openSync(`${systemd.root}${GATE}`, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // No reader (no task running): nothing to release.
  }
}
