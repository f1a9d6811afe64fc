/**
 * Log streaming benchmarks (issue: logs), all against the private systemd, baselines in the same run:
 *  - throughput of GET /logs vs raw `journalctl -o json --all` over the same 100 000 entries;
 *  - follow latency, from the moment a task writes a line to the moment a follower has it;
 *  - 200 concurrent followers of one task: every entry reaches every follower.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client } from '../src/embedded/api-client.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { followLines, readAll } from '../src/embedded/api-streams.js';
import { startTask, waitForJournalLine, waitForState } from '../src/embedded/runner-tasks.js';
import { TASK_LOG_NAMESPACE } from '../src/package-layout.js';
import { cpuDuring, watchedProcesses } from './processes.js';

export const LOG_BENCH_MACHINES = {
  'bench-burst': { exec: ['/usr/bin/seq', '1', '100000'] },
  // One line every 20 ms, carrying the time it was written (ns since the epoch).
  'bench-ticker': { exec: ['/bin/sh', '-c', 'i=0; while [ $i -lt 500 ]; do date +%s%N; sleep 0.02; i=$((i+1)); done'] },
  'bench-steady': {
    exec: ['/bin/sh', '-c', 'i=1; while [ $i -le 2000 ]; do echo $i; i=$((i+1)); [ $((i % 200)) = 0 ] && sleep 0.2; done'],
  },
};

const ROUNDS = 5;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

export interface LogBenchResult {
  throughput: {
    entries: number;
    rawMs: number;
    apiMs: number;
    apiGzipMs: number;
    /** rawMs / apiMs: of the medians. */
    ratio: number;
    gzipRatio: number;
    /** The median of each round's raw / API: a round's reads come one after the other, on the machine as it is then. */
    pairedRatio: number;
    rounds: number;
    /** CPU milliseconds a read, by process (journalctl is in "other"), raw and through the API. */
    cpuMsPerRead: { raw: Record<string, number>; api: Record<string, number> };
  };
  followLatency: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; rawP50Ms: number; rawP99Ms: number };
  followers: { followers: number; entriesPerFollower: number; lost: number; allEnded: boolean; seconds: number };
}

export async function benchLogs(runner: RunnerService, systemd: PrivateSystemd, log: (line: string) => void): Promise<LogBenchResult> {
  const api = client(runner.baseUrl);

  // Throughput: the same finished task's 100 000 entries, read three ways, ROUNDS times each, interleaved.
  // This machine's speed drifts by a third within minutes: each round's own ratio is kept too.
  const burst = await startTask(api, 'bench-burst', null);
  await waitForState(api, burst.taskId, ['exited']);
  await waitForJournalLine(runner, burst.taskId, '100000', 60_000);
  const url = `${runner.baseUrl}/v1/tasks/${burst.taskId}/logs`;
  const raw: number[] = [];
  const viaApi: number[] = [];
  const viaGzip: number[] = [];
  let entries = 0;
  const processes = await watchedProcesses(systemd, runner.unit, runner.starter?.unit);
  const cpu = { raw: {} as Record<string, number>, api: {} as Record<string, number> };
  const addCpu = (into: Record<string, number>, used: Record<string, number>) => {
    for (const [name, seconds] of Object.entries(used)) into[name] = (into[name] ?? 0) + seconds;
  };
  for (let round = 0; round < ROUNDS; round++) {
    let began = performance.now();
    const { result, cpuSeconds: rawCpu } = await cpuDuring(systemd, processes, () =>
      systemd.run(
        [
          'journalctl',
          `--namespace=+${TASK_LOG_NAMESPACE}`,
          '--output=json',
          '--all',
          '--no-pager',
          '--',
          `TESSIA_TASK_ID=${burst.taskId}`,
          `_SYSTEMD_UNIT=${burst.unit}`,
          '+',
          `UNIT=${burst.unit}`,
          '_PID=1',
        ],
        { timeoutMs: 120_000 },
      ),
    );
    raw.push(performance.now() - began);
    addCpu(cpu.raw, rawCpu);
    const rawCount = result.stdout.split('\n').filter(Boolean).length;
    began = performance.now();
    const { result: reply, cpuSeconds: apiCpu } = await cpuDuring(systemd, processes, () => readAll(url));
    viaApi.push(performance.now() - began);
    addCpu(cpu.api, apiCpu);
    entries = reply.body.split('\n').filter((line) => line.startsWith('{"type":"entry"')).length;
    if (entries !== rawCount) throw new Error(`the API gave ${entries} entries, journalctl ${rawCount}`);
    began = performance.now();
    await readAll(url, { 'accept-encoding': 'gzip' });
    viaGzip.push(performance.now() - began);
  }
  const roundRatios = raw.map((ms, round) => ms / (viaApi[round] ?? NaN));
  const rawMs = median(raw);
  const apiMs = median(viaApi);
  const apiGzipMs = median(viaGzip);
  const perRead = (used: Record<string, number>) =>
    Object.fromEntries(Object.entries(used).map(([name, seconds]) => [name, Math.round((seconds * 1000) / ROUNDS)]));
  const cpuMsPerRead = { raw: perRead(cpu.raw), api: perRead(cpu.api) };
  log(
    `throughput: ${entries} entries, medians of ${ROUNDS}: journalctl ${rawMs.toFixed(0)} ms, API ${apiMs.toFixed(0)} ms, API+gzip ${apiGzipMs.toFixed(0)} ms; ` +
      `each round's journalctl/API ${roundRatios.map((ratio) => ratio.toFixed(3)).join(' ')} (median ${median(roundRatios).toFixed(3)}); ` +
      `CPU ms a read: raw ${JSON.stringify(cpuMsPerRead.raw)}, API ${JSON.stringify(cpuMsPerRead.api)}`,
  );

  // Follow latency: each line carries its write time; the follower notes when it got it. A raw
  // `journalctl --follow` on the same lines at the same time is the baseline.
  const ticker = await startTask(api, 'bench-ticker', null);
  const now = () => BigInt(Date.now()) * 1_000_000n;
  const latencies: number[] = [];
  const rawLatencies: number[] = [];
  const rawFollow = spawn(
    'nsenter',
    [
      '-t',
      String(systemd.pid),
      '-m',
      '-p',
      '--',
      'journalctl',
      `--namespace=${TASK_LOG_NAMESPACE}`,
      '--output=json',
      '--follow',
      '--lines=all',
      '--no-pager',
      `TESSIA_TASK_ID=${ticker.taskId}`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let rawPartial = '';
  rawFollow.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const received = now();
    rawPartial += chunk;
    const lines = rawPartial.split('\n');
    rawPartial = lines.pop() ?? '';
    for (const line of lines) {
      const message = JSON.parse(line).MESSAGE;
      if (/^\d{19}$/.test(message)) rawLatencies.push(Number(received - BigInt(message)) / 1e6);
    }
    if (rawLatencies.length >= 500) rawFollow.kill();
  });
  const follow = followLines(`${url.replace(burst.taskId, ticker.taskId)}?follow=true`, (line) => {
    const received = now();
    const entry = JSON.parse(line);
    if (entry.type === 'entry' && /^\d{19}$/.test(entry.message)) latencies.push(Number(received - BigInt(entry.message)) / 1e6);
  });
  await follow.done;
  if (rawFollow.exitCode === null) rawFollow.kill();
  log(
    `follow latency: ${latencies.length} lines, API p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ` +
      `raw journalctl --follow p50 ${percentile(rawLatencies, 50).toFixed(1)} ms, p99 ${percentile(rawLatencies, 99).toFixed(1)} ms`,
  );

  // 200 followers of one task.
  const FOLLOWERS = 200;
  const steady = await startTask(api, 'bench-steady', null);
  const began = performance.now();
  const counts = Array.from({ length: FOLLOWERS }, () => ({ entries: new Set<string>(), ended: false, status: 0, other: [] as string[] }));
  const streams = counts.map((count) =>
    followLines(`${runner.baseUrl}/v1/tasks/${steady.taskId}/logs?follow=true`, (line) => {
      const entry = JSON.parse(line);
      if (entry.type === 'entry' && entry.source === 'task') count.entries.add(entry.message);
      else if (entry.type === 'end') count.ended = true;
      else if (count.other.length < 3) count.other.push(line.slice(0, 300));
    }),
  );
  await Promise.all(streams.map((stream, i) => stream.done.then((status) => ((counts[i] as { status: number }).status = status))));
  const seconds = (performance.now() - began) / 1000;
  const expected = 2000;
  const lost = counts.reduce((sum, count) => sum + (expected - count.entries.size), 0);
  log(`followers: ${FOLLOWERS} followers, ${expected} entries each expected, ${lost} lost, ${seconds.toFixed(1)} s`);
  // What a follower that missed entries got instead (its status, the lines that were not entries).
  for (const count of counts.filter((each) => each.entries.size < expected).slice(0, 5)) {
    log(`  a follower got ${count.entries.size} entries, status ${count.status}, ended ${count.ended}: ${JSON.stringify(count.other)}`);
  }
  await sleep(0);
  return {
    throughput: {
      entries,
      rawMs,
      apiMs,
      apiGzipMs,
      ratio: rawMs / apiMs,
      gzipRatio: rawMs / apiGzipMs,
      pairedRatio: median(roundRatios),
      rounds: ROUNDS,
      cpuMsPerRead,
    },
    followLatency: {
      samples: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
      rawP50Ms: percentile(rawLatencies, 50),
      rawP99Ms: percentile(rawLatencies, 99),
    },
    followers: { followers: FOLLOWERS, entriesPerFollower: expected, lost, allEnded: counts.every((c) => c.ended), seconds },
  };
}
