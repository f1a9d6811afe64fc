/**
 * Scale benchmarks (issue 17): N tasks running at once, for N = 10, 100, 1000 and then as many as
 * the host allows (the ceiling: tasks are started until one is refused), and how each figure grows.
 * Before the stages the store is given a history of finished tasks (100 000 by default, written with
 * the store's own code while the runner is stopped: bench/records.ts), so every list is measured
 * with it. Each stage ends with a storm of endings — half the tasks stopped through the API, the
 * other half released at the same instant — and checks every final state.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_DIR_INSIDE, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client } from '../src/embedded/api-client.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { followLines } from '../src/embedded/api-streams.js';
import { cpuDuring, cpuSeconds as processCpuSeconds, mainPid, memory, unitFootprint, watchedProcesses } from './processes.js';
import type { RecordsWritten } from './records.js';
import { inParallel, percentile, round } from './stats.js';

const GATE_DIR = '/run/tessia-bench';
const GATE = `${GATE_DIR}/gate`;

export const SCALE_BENCH_MACHINES = {
  // Says one line (each task's journal stream is used), then waits, with no CPU and ~1 MB, until
  // the bench opens and closes the gate FIFO; then exits 3. (Not the Node echo machine: 1000 Node
  // processes would need ~40 GB.)
  'bench-hold': { exec: ['/bin/sh', '-c', `echo held; read line < ${GATE}; exit 3`] },
  'bench-true': { exec: ['/bin/true'] },
};

const CLIENTS = 16;
/** Requests of each list query a stage measures. */
const LIST_SAMPLES = 40;

export interface ScaleOptions {
  /** Stages of exactly this many tasks at once. */
  sizes: number[];
  /** Then one stage that starts tasks until one is refused, or this many run (0: none). */
  ceiling: number;
  /** Finished tasks written into the store before the stages. */
  records: number;
}

/** A refused request's answer. */
interface Answer {
  status: number;
  code?: string;
  detail?: string;
}

interface Refusal {
  status: number;
  code?: string;
  detail?: string;
  /** The refused request's task, when it made one: as the store has it then. */
  task?: Full;
  /** Its unit as systemd has it then (LoadState, ActiveState, Result, ExecMainStatus). */
  unit?: Record<string, string>;
  /** What systemd logged about that unit. */
  systemdSays?: string[];
}

export interface ScaleStage {
  tasks: number;
  /** The ceiling stage: the first refusal, what else the host had in use then, and that nothing was left half-done. */
  ceiling?: Awaited<ReturnType<typeof whatStoppedIt>>;
  start: { seconds: number; perSecond: number; p50Ms: number; p99Ms: number; failures: number };
  allRunning: boolean;
  /** The last ten started tasks' logs hold their first line (their journal streams work). */
  logsOfLastStarted: string;
  list: Record<string, ListFigure>;
  show: { p95Ms: number };
  /** systemd's (PID 1's) open descriptors by kind, all tasks running: what its RLIMIT_NOFILE must hold. */
  systemdFds: Record<string, number>;
  runnerRssMiB: number;
  runnerPeakRssMiB: number;
  /** The runner's unit, all its processes, before and while MAX_LOG_STREAMS log streams follow (the 1000 stage). */
  withStreams?: Awaited<ReturnType<typeof footprintWithStreams>>;
  /** Half stopped through the API, half released at once: until every one is recorded as ended. */
  end: { seconds: number; stopped: number; released: number; finalStatesRight: number; wrong: string[] };
  cpuSecondsDuringStart: Record<string, number>;
}

interface ListFigure {
  items: number;
  bytes: number;
  p50Ms: number;
  p95Ms: number;
  /** The three slowest requests (of LIST_SAMPLES: p95 of 40 is the third slowest). */
  slowestMs: number[];
  /** The runner's CPU a request (from its /proc stat: less noisy than times on a shared machine). */
  runnerCpuMs: number;
}

export interface ScaleBenchResult {
  records: RecordsWritten & { runnerReadySeconds: number };
  runnerRssBeforeMiB: number;
  stages: ScaleStage[];
}

interface Brief {
  taskId: string;
  state: string;
}
interface Full extends Brief {
  exitCode: number | null;
  machine: string;
  detail: string | null;
}

export async function benchScale(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  options: ScaleOptions,
): Promise<ScaleBenchResult> {
  mkdirSync(`${systemd.root}${GATE_DIR}`, { recursive: true });
  const records = await writeRecords(runner, systemd, options.records);
  log(
    `store given ${records.tasks} finished tasks and ${records.events} events in ${records.seconds} s (store code, runner stopped); ` +
      `runner ready ${records.runnerReadySeconds} s after its start`,
  );
  const processes = await watchedProcesses(systemd, runner.unit, runner.starter?.unit);
  const idle = memory(systemd, await mainPid(systemd, runner.unit));
  log(`runner RSS before the stages: ${round(idle.rssBytes / 2 ** 20)} MiB (peak so far ${round(idle.peakRssBytes / 2 ** 20)})`);
  const stages: ScaleStage[] = [];
  const targets = [
    ...options.sizes.map((size) => ({ size, untilRefused: false })),
    ...(options.ceiling > 0 ? [{ size: options.ceiling, untilRefused: true }] : []),
  ];
  for (const { size, untilRefused } of targets) {
    const stage = await runStage(runner, systemd, processes, size, untilRefused);
    const list = stage.list['default'];
    log(
      `${untilRefused ? `ceiling (up to ${size})` : size}: ${stage.tasks} at once, started in ${stage.start.seconds} s (${stage.start.perSecond}/s, p50 ${stage.start.p50Ms} ms, p99 ${stage.start.p99Ms} ms), ` +
        `all running: ${stage.allRunning}; logs: ${stage.logsOfLastStarted}; GET /v1/tasks (${list?.items} of ${options.records}+ records) p50 ${list?.p50Ms} ms p95 ${list?.p95Ms} ms; ` +
        `runner RSS ${stage.runnerRssMiB} MiB (peak ${stage.runnerPeakRssMiB}); all ended in ${stage.end.seconds} s, ` +
        `${stage.end.finalStatesRight}/${stage.tasks} final states right`,
    );
    for (const [name, figure] of Object.entries(stage.list))
      log(
        `  GET /v1/tasks ${name}: ${figure.items} items, ${figure.bytes} bytes, p50 ${figure.p50Ms} ms p95 ${figure.p95Ms} ms (slowest ${figure.slowestMs.join(', ')}), runner CPU ${figure.runnerCpuMs} ms a request`,
      );
    log(`  systemd's descriptors, all running: ${JSON.stringify(stage.systemdFds)}`);
    if (stage.ceiling) log(`  ceiling: ${JSON.stringify(stage.ceiling)}`);
    stages.push(stage);
  }
  return { records, runnerRssBeforeMiB: round(idle.rssBytes / 2 ** 20), stages };
}

/** The runner stopped, `count` finished tasks written into its store, the runner started again. */
async function writeRecords(runner: RunnerService, systemd: PrivateSystemd, count: number): Promise<ScaleBenchResult['records']> {
  if (count <= 0) return { tasks: 0, events: 0, seconds: 0, runnerReadySeconds: 0 };
  await runner.stop();
  const wrote = await systemd.run(
    [
      'node',
      '--import',
      `${APP_DIR_INSIDE}/node_modules/tsx/dist/loader.mjs`,
      `${APP_DIR_INSIDE}/bench/write-records.ts`,
      runner.stateDir,
      String(count),
      ...Object.keys(SCALE_BENCH_MACHINES),
    ],
    { timeoutMs: 3_600_000 },
  );
  if (wrote.code !== 0) throw new Error(`writing the records failed: ${wrote.stderr}`);
  const written = JSON.parse(wrote.stdout) as RecordsWritten;
  const began = performance.now();
  await runner.start();
  return { ...written, runnerReadySeconds: round((performance.now() - began) / 1000, 2) };
}

async function runStage(
  runner: RunnerService,
  systemd: PrivateSystemd,
  processes: Record<string, number>,
  size: number,
  untilRefused: boolean,
): Promise<ScaleStage> {
  const api = client(runner.baseUrl);
  makeGate(systemd);
  const stageBegan = new Date().toISOString();
  const startMs: number[] = [];
  const ids: string[] = [];
  const refusals: Answer[] = [];
  const began = performance.now();
  const { cpuSeconds } = await cpuDuring(systemd, processes, () =>
    inParallel(
      Array.from({ length: size }, (_, i) => i),
      CLIENTS,
      async () => {
        // The ceiling: no more once one is refused (the starts already sent finish).
        if (untilRefused && refusals.length > 0) return;
        const sent = performance.now();
        const reply = await api.post<Full>('/v1/tasks', { machine: 'bench-hold', parameters: null });
        startMs.push(performance.now() - sent);
        if (reply.status === 201 && reply.body.state === 'running') ids.push(reply.body.taskId);
        else {
          refusals.push({ status: reply.status, ...(reply.body as Omit<Answer, 'status'>) });
          process.stderr.write(`[bench]   a start answered ${reply.status}: ${JSON.stringify(reply.body).slice(0, 400)}\n`);
        }
      },
    ),
  );
  const startSeconds = (performance.now() - began) / 1000;
  const runnerPid = await mainPid(systemd, runner.unit);
  const ceiling = untilRefused ? await whatStoppedIt(runner, systemd, ids, refusals) : undefined;

  const active = await api.getAll<Brief>(`/v1/tasks?state=${ACTIVE}`);
  const states = new Map(active.map((task) => [task.taskId, task.state]));
  const allRunning = ids.length > 0 && ids.every((id) => states.get(id) === 'running') && active.length === ids.length;
  const logsOfLastStarted = await firstLinesOf(runner.baseUrl, ids.slice(-10));

  const list = await listFigures(runner.baseUrl, stageBegan, () => processCpuSeconds(systemd, runnerPid));
  const showMs: number[] = [];
  for (let i = 0; i < 100; i++) {
    const sent = performance.now();
    await api.get(`/v1/tasks/${ids[i % ids.length]}`);
    showMs.push(performance.now() - sent);
  }
  const rss = memory(systemd, await mainPid(systemd, runner.unit));
  const systemdFds = descriptorsByKind(systemd.pid);
  const withStreams = size === 1000 && !untilRefused ? await footprintWithStreams(runner, systemd, ids) : undefined;

  // The storm: stop the first half through the API, then release the rest at once.
  const endBegan = performance.now();
  const toStop = ids.slice(0, Math.floor(ids.length / 2));
  const toRelease = ids.slice(toStop.length);
  await inParallel(toStop, CLIENTS, async (id) => {
    await api.post(`/v1/tasks/${id}/stop`);
  });
  openGate(systemd);
  const final = await waitAllEnded(runner.baseUrl, ids, stageBegan);
  const endSeconds = (performance.now() - endBegan) / 1000;
  const expected = new Map([...toStop.map((id) => [id, -1] as const), ...toRelease.map((id) => [id, 3] as const)]);
  const wrong = ids
    .filter((id) => final.get(id)?.exitCode !== expected.get(id) || final.get(id)?.state !== 'exited')
    .map((id) => `${id}: ${JSON.stringify(final.get(id))}`);
  return {
    tasks: ids.length,
    ...(ceiling ? { ceiling } : {}),
    start: {
      seconds: round(startSeconds, 2),
      perSecond: round(ids.length / startSeconds),
      p50Ms: round(percentile(startMs, 50)),
      p99Ms: round(percentile(startMs, 99)),
      failures: refusals.length,
    },
    allRunning,
    logsOfLastStarted,
    list,
    show: { p95Ms: round(percentile(showMs, 95)) },
    systemdFds,
    runnerRssMiB: round(rss.rssBytes / 2 ** 20),
    runnerPeakRssMiB: round(rss.peakRssBytes / 2 ** 20),
    ...(withStreams ? { withStreams } : {}),
    end: {
      seconds: round(endSeconds, 2),
      stopped: toStop.length,
      released: toRelease.length,
      finalStatesRight: ids.length - wrong.length,
      wrong: wrong.slice(0, 10),
    },
    cpuSecondsDuringStart: Object.fromEntries(Object.entries(cpuSeconds).map(([name, used]) => [name, round(used, 2)])),
  };
}

const ACTIVE = 'created,running,stopping';

/**
 * GET /v1/tasks as clients page it: the default page, the largest page of each view, and each
 * filter the API has (state, machine, since), LIST_SAMPLES times each.
 */
async function listFigures(baseUrl: string, stageBegan: string, runnerCpu: () => number): Promise<Record<string, ListFigure>> {
  const last = await fetch(`${baseUrl}/v1/tasks?view=full&limit=1`);
  const queries: Record<string, string> = {
    default: '',
    'full, default page': 'view=full',
    'full, largest page': 'view=full&limit=1000',
    'page after a cursor': `after=${Math.max(0, cursorOf(last.headers.get('link')) + 50_000)}`,
    'state=running': 'state=running',
    'state=running, full, largest page': 'state=running&view=full&limit=1000',
    'state=lost': 'state=lost',
    'state=exited,lost, full': 'state=exited,lost&view=full',
    'machine=bench-true': 'machine=bench-true',
    'since the stage began, full, largest page': `since=${stageBegan}&view=full&limit=1000`,
    'since the stage began, state=running': `since=${stageBegan}&state=running`,
  };
  // The default page once more by node:http, its connection kept alive (as fetch keeps its own),
  // nothing compressed: fetch (undici) asks for gzip and inflates it, in this process.
  const keptAlive = new Agent({ keepAlive: true });
  const plainHttp: Record<string, string> = { 'default, node:http kept alive, not compressed': '' };
  const figures: Record<string, ListFigure> = {};
  try {
    for (const [name, query] of Object.entries({ ...queries, ...plainHttp })) {
      const times: number[] = [];
      let bytes = 0;
      let items = 0;
      const cpuBefore = runnerCpu();
      for (let i = 0; i < LIST_SAMPLES; i++) {
        const sent = performance.now();
        const url = `${baseUrl}/v1/tasks?${query}`;
        const { status, body } = name in plainHttp ? await getKeptAlive(url, keptAlive) : await getByFetch(url);
        times.push(performance.now() - sent);
        if (status !== 200) throw new Error(`GET /v1/tasks?${query}: ${status} ${body.toString()}`);
        bytes = body.byteLength;
        items = (JSON.parse(body.toString()) as unknown[]).length;
      }
      const runnerCpuMs = round(((runnerCpu() - cpuBefore) * 1000) / LIST_SAMPLES, 2);
      const slowestMs = [...times]
        .sort((a, b) => b - a)
        .slice(0, 3)
        .map((ms) => round(ms));
      figures[name] = { items, bytes, p50Ms: round(percentile(times, 50)), p95Ms: round(percentile(times, 95)), slowestMs, runnerCpuMs };
    }
  } finally {
    keptAlive.destroy();
  }
  return figures;
}

async function getByFetch(url: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

function getKeptAlive(url: string, agent: Agent): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent, headers: { 'accept-encoding': 'identity' } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

function cursorOf(link: string | null): number {
  return Number(/after=(\d+)/.exec(link ?? '')?.[1] ?? 0);
}

/** Whether these tasks' logs hold the line each said first (its journal stream was taken). */
async function firstLinesOf(baseUrl: string, ids: string[]): Promise<string> {
  let said = 0;
  for (const id of ids) {
    const text = await (await fetch(`${baseUrl}/v1/tasks/${id}/logs`)).text();
    if (text.includes('held')) said += 1;
  }
  return `${said}/${ids.length} said their line`;
}

/** The log streams a runner allows at once (limits.maxLogStreams, default). */
const MAX_LOG_STREAMS = 256;

/**
 * The runner's whole unit (its journalctl children included) with as many log streams following as
 * it allows, spread over the running tasks: what the service unit's MemoryMax and TasksMax must hold.
 */
async function footprintWithStreams(runner: RunnerService, systemd: PrivateSystemd, ids: string[]) {
  const before = await unitFootprint(systemd, runner.unit);
  const streams = Array.from({ length: MAX_LOG_STREAMS }, (_, i) =>
    followLines(`${runner.baseUrl}/v1/tasks/${ids[i % ids.length]}/logs?follow=true`, () => undefined),
  );
  try {
    const statuses = await Promise.all(streams.map(async (stream) => (await stream.response).statusCode));
    // Until every stream's journalctl has started (the count stops growing), then settled.
    let during = await unitFootprint(systemd, runner.unit);
    for (let waited = 0; waited < 30; waited++) {
      await sleep(1000);
      const now = await unitFootprint(systemd, runner.unit);
      const grew = now.processes > during.processes;
      during = now;
      if (!grew && during.processes > MAX_LOG_STREAMS) break;
    }
    const mib = (bytes: number) => round(bytes / 2 ** 20);
    return {
      streams: statuses.filter((status) => status === 200).length,
      before: {
        processes: before.processes,
        tasks: before.tasks,
        pssMiB: mib(before.pssBytes),
        memoryCurrentMiB: mib(before.memoryCurrentBytes),
      },
      during: {
        processes: during.processes,
        tasks: during.tasks,
        pssMiB: mib(during.pssBytes),
        memoryCurrentMiB: mib(during.memoryCurrentBytes),
      },
    };
  } finally {
    for (const stream of streams) stream.abort();
    await Promise.allSettled(streams.map((stream) => stream.done));
  }
}

/** Until none of `ids` is active; then each one's record (all were created since `since`). */
async function waitAllEnded(baseUrl: string, ids: string[], since: string): Promise<Map<string, Full>> {
  const api = client(baseUrl);
  const waiting = new Set(ids);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const active = await api.getAll<Brief>(`/v1/tasks?state=${ACTIVE}&since=${since}`);
    if (!active.some((task) => waiting.has(task.taskId)) || Date.now() > deadline) break;
    await sleep(100);
  }
  return new Map((await api.getAll<Full>(`/v1/tasks?view=full&limit=1000&since=${since}`)).map((task) => [task.taskId, task]));
}

/**
 * At the ceiling: what the refused start answered and left behind (its task's record, its unit,
 * what systemd logged about it), that every other task is still running and nothing else is
 * active, and what the host had in use then — dynamic users, processes, descriptors, memory.
 */
async function whatStoppedIt(runner: RunnerService, systemd: PrivateSystemd, ids: string[], refusals: Answer[]) {
  const api = client(runner.baseUrl);
  const refused: Refusal[] = [];
  for (const reply of refusals.slice(0, 3)) {
    const taskId = /task ([0-9a-f]{8})/.exec(reply.detail ?? '')?.[1];
    const refusal: Refusal = {
      status: reply.status,
      ...(reply.code ? { code: reply.code } : {}),
      ...(reply.detail ? { detail: reply.detail } : {}),
    };
    if (taskId !== undefined) {
      const unit = `tessia-task-${taskId}.service`;
      const task = await api.get<Full>(`/v1/tasks/${taskId}`);
      if (task.status === 200) refusal.task = task.body;
      refusal.unit = await systemd.show(unit, ['LoadState', 'ActiveState', 'Result', 'ExecMainStatus']);
      refusal.systemdSays = (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit])).stdout
        .split('\n')
        .filter(Boolean)
        .slice(-5);
    }
    refused.push(refusal);
  }
  // One start more, now that the host is full: refused the same way.
  const again = await api.post<Full>('/v1/tasks', { machine: 'bench-hold', parameters: null });
  if (again.status === 201) ids.push(again.body.taskId);
  const units = (await systemd.run(['systemctl', 'list-units', '--all', '--plain', '--no-legend', 'tessia-task-*.service'])).stdout
    .split('\n')
    .filter(Boolean);
  const runnerPid = await mainPid(systemd, runner.unit);
  const count = (dir: string, pattern = /./) => {
    try {
      return readdirSync(`${systemd.root}${dir}`).filter((name) => pattern.test(name)).length;
    } catch {
      return -1;
    }
  };
  const journalNamespacePid = await mainPid(systemd, 'systemd-journald@tessia.service').catch(() => 0);
  const memAvailable = /^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  const slice = await systemd.show('tessia-tasks.slice', ['TasksCurrent', 'TasksMax', 'MemoryCurrent']);
  const manager = (await systemd.systemctl('show', '--property=DefaultTasksMax,NNames,NJobs')).stdout.trim().split('\n');
  return {
    refused,
    oneMore: { status: again.status, detail: (again.body as { detail?: string }).detail ?? null },
    running: ids.length,
    taskUnitsLoaded: units.length,
    taskUnitsActive: units.filter((line) => line.includes(' active ')).length,
    taskUnitsFailed: units.filter((line) => line.includes(' failed ')).length,
    inUse: {
      dynamicUsers: count('/run/systemd/dynamic-uid', /^\d+$/),
      processes: count('/proc', /^\d+$/),
      runnerFds: count(`/proc/${runnerPid}/fd`),
      systemdFds: count('/proc/1/fd'),
      taskJournaldFds: journalNamespacePid > 0 ? count(`/proc/${journalNamespacePid}/fd`) : -1,
      memAvailableMiB: Math.round(Number(memAvailable) / 1024),
      slice,
      manager,
    },
  };
}

/** A process's open descriptors by what they are (bpf-prog, socket, a file's directory…), and their total. */
function descriptorsByKind(hostPid: number): Record<string, number> {
  const kinds: Record<string, number> = { total: 0 };
  for (const fd of readdirSync(`/proc/${hostPid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${hostPid}/fd/${fd}`);
    } catch {
      continue;
    }
    const kind =
      target.startsWith('anon_inode:') || target.includes(':[') ? target.replace(/\[\d+\]$/, '') : target.replace(/\/[^/]*$/, '/…');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    kinds['total'] = (kinds['total'] ?? 0) + 1;
  }
  return kinds;
}

function makeGate(systemd: PrivateSystemd): void {
  const path = `${systemd.root}${GATE}`;
  rmSync(path, { force: true });
  execFileSync('mkfifo', ['-m', '0644', path]);
}

/** Every task blocked reading the FIFO sees end-of-file once a writer opens and closes it. */
function openGate(systemd: PrivateSystemd): void {
  const fd = openSync(`${systemd.root}${GATE}`, constants.O_WRONLY | constants.O_NONBLOCK);
  closeSync(fd);
}
