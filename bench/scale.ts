/**
 * Scale benchmarks (issue: performance): N tasks running at once, for N = 10, 100, 1000, and how
 * each figure grows. Before the last stage the store is filled with finished tasks, so the list is
 * measured with 10 000 records. Each stage ends with a storm of endings — half the tasks stopped
 * through the API, the other half released at the same instant — and checks every final state.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client } from '../src/embedded/api-client.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { followLines } from '../src/embedded/api-streams.js';
import { cpuDuring, mainPid, memory, unitFootprint, watchedProcesses } from './processes.js';
import { inParallel, percentile, round } from './stats.js';

const GATE_DIR = '/run/tessia-bench';
const GATE = `${GATE_DIR}/gate`;

export const SCALE_BENCH_MACHINES = {
  // Waits, with no CPU and ~1 MB, until the bench opens and closes the gate FIFO; then exits 3.
  // (Not the Node echo machine: 1000 Node processes would need ~40 GB.)
  'bench-hold': { exec: ['/bin/sh', '-c', `read line < ${GATE}; exit 3`] },
  'bench-true': { exec: ['/bin/true'] },
};

const CLIENTS = 16;

export interface ScaleStage {
  tasks: number;
  recordsInStore: number;
  start: { seconds: number; perSecond: number; p50Ms: number; p99Ms: number; failures: number };
  allRunning: boolean;
  list: { records: number; bytes: number; p50Ms: number; p95Ms: number };
  show: { p95Ms: number };
  runnerRssMiB: number;
  runnerPeakRssMiB: number;
  /** The runner's unit, all its processes, before and while MAX_LOG_STREAMS log streams follow. */
  withStreams: Awaited<ReturnType<typeof footprintWithStreams>>;
  /** Half stopped through the API, half released at once: until every one is recorded as ended. */
  end: { seconds: number; stopped: number; released: number; finalStatesRight: number; wrong: string[] };
  cpuSecondsDuringStart: Record<string, number>;
}

export interface ScaleBenchResult {
  runnerRssBeforeMiB: number;
  fill: { tasks: number; seconds: number; perSecond: number };
  stages: ScaleStage[];
}

interface Brief {
  taskId: string;
  state: string;
}
interface Full extends Brief {
  exitCode: number | null;
  machine: string;
}

export async function benchScale(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  sizes = [10, 100, 1000],
  records = 10_000,
): Promise<ScaleBenchResult> {
  const api = client(runner.baseUrl);
  mkdirSync(`${systemd.root}${GATE_DIR}`, { recursive: true });
  const processes = await watchedProcesses(systemd, runner.unit, runner.starter?.unit);
  const idle = memory(systemd, await mainPid(systemd, runner.unit));
  log(`runner RSS before the stages: ${round(idle.rssBytes / 2 ** 20)} MiB (peak so far ${round(idle.peakRssBytes / 2 ** 20)})`);
  const stages: ScaleStage[] = [];
  let fill = { tasks: 0, seconds: 0, perSecond: 0 };
  for (const size of sizes) {
    if (size === sizes[sizes.length - 1]) {
      fill = await fillStore(api, records - size - (await api.getAll<Brief>('/v1/tasks')).length);
      log(`store filled with ${fill.tasks} finished tasks in ${fill.seconds} s (${fill.perSecond}/s)`);
    }
    const stage = await runStage(runner, systemd, processes, size);
    log(
      `${size} at once: started in ${stage.start.seconds} s (${stage.start.perSecond}/s, p50 ${stage.start.p50Ms} ms, p99 ${stage.start.p99Ms} ms), ` +
        `all running: ${stage.allRunning}; GET /v1/tasks with ${stage.list.records} records p50 ${stage.list.p50Ms} ms p95 ${stage.list.p95Ms} ms; ` +
        `runner RSS ${stage.runnerRssMiB} MiB (peak ${stage.runnerPeakRssMiB}); all ended in ${stage.end.seconds} s, ` +
        `${stage.end.finalStatesRight}/${size} final states right`,
    );
    stages.push(stage);
  }
  return { runnerRssBeforeMiB: round(idle.rssBytes / 2 ** 20), fill, stages };
}

async function runStage(
  runner: RunnerService,
  systemd: PrivateSystemd,
  processes: Record<string, number>,
  size: number,
): Promise<ScaleStage> {
  const api = client(runner.baseUrl);
  makeGate(systemd);
  const startMs: number[] = [];
  const ids: string[] = [];
  let failures = 0;
  const began = performance.now();
  const { cpuSeconds } = await cpuDuring(systemd, processes, () =>
    inParallel(
      Array.from({ length: size }, (_, i) => i),
      CLIENTS,
      async () => {
        const sent = performance.now();
        const reply = await api.post<Full>('/v1/tasks', { machine: 'bench-hold', parameters: null });
        startMs.push(performance.now() - sent);
        if (reply.status === 201 && reply.body.state === 'running') ids.push(reply.body.taskId);
        else failures += 1;
      },
    ),
  );
  const startSeconds = (performance.now() - began) / 1000;

  // Every page: with the records, there are more tasks than the first page holds.
  const states = new Map((await api.getAll<Brief>('/v1/tasks')).map((task) => [task.taskId, task.state]));
  const allRunning = ids.length === size && ids.every((id) => states.get(id) === 'running');

  const listMs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 40; i++) {
    const sent = performance.now();
    const response = await fetch(`${runner.baseUrl}/v1/tasks`);
    bytes = (await response.arrayBuffer()).byteLength;
    listMs.push(performance.now() - sent);
  }
  const showMs: number[] = [];
  for (let i = 0; i < 100; i++) {
    const sent = performance.now();
    await api.get(`/v1/tasks/${ids[i % ids.length]}`);
    showMs.push(performance.now() - sent);
  }
  const rss = memory(systemd, await mainPid(systemd, runner.unit));
  const withStreams = await footprintWithStreams(runner, systemd, ids);

  // The storm: stop the first half through the API, then release the rest at once.
  const endBegan = performance.now();
  const toStop = ids.slice(0, Math.floor(ids.length / 2));
  const toRelease = ids.slice(toStop.length);
  await inParallel(toStop, CLIENTS, async (id) => {
    await api.post(`/v1/tasks/${id}/stop`);
  });
  openGate(systemd);
  const final = await waitAllEnded(runner.baseUrl, ids);
  const endSeconds = (performance.now() - endBegan) / 1000;
  const expected = new Map([...toStop.map((id) => [id, -1] as const), ...toRelease.map((id) => [id, 3] as const)]);
  const wrong = ids.filter((id) => final.get(id)?.exitCode !== expected.get(id)).map((id) => `${id}: ${JSON.stringify(final.get(id))}`);
  return {
    tasks: size,
    recordsInStore: states.size,
    start: {
      seconds: round(startSeconds, 2),
      perSecond: round(size / startSeconds),
      p50Ms: round(percentile(startMs, 50)),
      p99Ms: round(percentile(startMs, 99)),
      failures,
    },
    allRunning,
    list: { records: states.size, bytes, p50Ms: round(percentile(listMs, 50)), p95Ms: round(percentile(listMs, 95)) },
    show: { p95Ms: round(percentile(showMs, 95)) },
    runnerRssMiB: round(rss.rssBytes / 2 ** 20),
    runnerPeakRssMiB: round(rss.peakRssBytes / 2 ** 20),
    withStreams,
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

/** Short tasks until the store holds `count` more records (the history a busy runner keeps). */
async function fillStore(api: ReturnType<typeof client>, count: number): Promise<{ tasks: number; seconds: number; perSecond: number }> {
  if (count <= 0) return { tasks: 0, seconds: 0, perSecond: 0 };
  const began = performance.now();
  let failures = 0;
  await inParallel(
    Array.from({ length: count }, (_, i) => i),
    CLIENTS,
    async () => {
      if ((await api.post('/v1/tasks', { machine: 'bench-true', parameters: null })).status !== 201) failures += 1;
    },
  );
  if (failures > 0) throw new Error(`${failures} fill starts failed`);
  const seconds = (performance.now() - began) / 1000;
  return { tasks: count, seconds: round(seconds, 2), perSecond: round(count / seconds) };
}

async function waitAllEnded(baseUrl: string, ids: string[]): Promise<Map<string, Full>> {
  const api = client(baseUrl);
  const deadline = Date.now() + 300_000;
  for (;;) {
    // Every page: the store holds more tasks than a page of the full view.
    const all = new Map((await api.getAll<Full>('/v1/tasks?view=full&limit=1000')).map((task) => [task.taskId, task]));
    if (ids.every((id) => ['exited', 'lost'].includes(all.get(id)?.state ?? ''))) return all;
    if (Date.now() > deadline) return all;
    await sleep(100);
  }
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
