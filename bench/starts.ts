/**
 * Start benchmarks (issue: performance), against the private systemd, baseline in the same run:
 *  - latency of POST /v1/tasks until the unit runs, vs a bare StartTransientUnit + JobRemoved round
 *    trip of the same unit shape made by the bench itself over the same bus, interleaved;
 *  - sustained starts per second with 16 concurrent clients.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig } from '../src/config/load.js';
import { MachineRegistry } from '../src/machines/registry.js';
import { SystemdClient } from '../src/systemd/client.js';
import type { PrivateSystemd } from '../test/harness/private-systemd.js';
import { client } from '../test/harness/http.js';
import type { RunnerService } from '../test/harness/runner-service.js';

export const START_BENCH_MACHINES = {
  // A light task (no Node start-up per task), in the same unit shape as every task.
  'bench-sleep': { exec: ['/bin/sleep', '0.3'] },
};

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

export interface StartBenchResult {
  samples: number;
  api: { p50Ms: number; p99Ms: number };
  bare: { p50Ms: number; p99Ms: number };
  p50Ratio: number;
  sustained: { clients: number; seconds: number; starts: number; perSecond: number; failures: number };
}

export async function benchStarts(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  samples = 500,
): Promise<StartBenchResult> {
  const api = client(runner.baseUrl);
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
  const bare = await SystemdClient.connect('tessia-bench-');
  const machine = new MachineRegistry(validateConfig({ machines: START_BENCH_MACHINES }).machines).get('bench-sleep');
  if (!machine) throw new Error('no bench machine');
  // The bare baseline's stdin: one parameters file, as the runner hands each task (it writes one per start).
  const parametersFile = '/run/tessia-bench-parameters.json';
  writeFileSync(`${systemd.root}${parametersFile}`, 'null', { mode: 0o600 });
  const apiMs: number[] = [];
  const bareMs: number[] = [];
  const bareUnits: string[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      let began = performance.now();
      const reply = await api.post('/v1/tasks', { machine: 'bench-sleep', parameters: null });
      apiMs.push(performance.now() - began);
      if (reply.status !== 201) throw new Error(`start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
      const id = `${process.pid.toString(16)}-${i}`;
      const spec = machine.unitSpec({ taskId: id, unitName: `tessia-bench-${id}.service`, machineName: 'bench-sleep', slice: 'tessia-bench.slice', parametersFile });
      began = performance.now();
      const result = await bare.startTransientUnit(spec);
      bareMs.push(performance.now() - began);
      if (result !== 'done') throw new Error(`bare start: ${result}`);
      bareUnits.push(spec.unitName);
    }
    const api50 = percentile(apiMs, 50);
    const bare50 = percentile(bareMs, 50);
    log(`start latency over ${samples}: API p50 ${api50.toFixed(1)} ms p99 ${percentile(apiMs, 99).toFixed(1)} ms; bare D-Bus p50 ${bare50.toFixed(1)} ms p99 ${percentile(bareMs, 99).toFixed(1)} ms`);

    // Sustained: 16 clients for 5 s.
    const CLIENTS = 16;
    const until = performance.now() + 5000;
    let starts = 0;
    let failures = 0;
    const began = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < until) {
          const reply = await api.post('/v1/tasks', { machine: 'bench-sleep', parameters: null });
          if (reply.status === 201) starts += 1;
          else failures += 1;
        }
      }),
    );
    const seconds = (performance.now() - began) / 1000;
    log(`sustained: ${CLIENTS} clients, ${starts} starts in ${seconds.toFixed(1)} s = ${(starts / seconds).toFixed(0)}/s, ${failures} failures`);
    return {
      samples,
      api: { p50Ms: api50, p99Ms: percentile(apiMs, 99) },
      bare: { p50Ms: bare50, p99Ms: percentile(bareMs, 99) },
      p50Ratio: api50 / bare50,
      sustained: { clients: CLIENTS, seconds, starts, perSecond: starts / seconds, failures },
    };
  } finally {
    // The bench's own units end by themselves (active/exited): collect them.
    await sleep(500);
    for (const unit of bareUnits) await bare.collectUnit(unit).catch(() => {});
    bare.close();
  }
}
