/**
 * Start benchmarks (issue: performance), against the private systemd, baseline in the same run:
 *  - latency of POST /v1/tasks until the unit runs, vs a bare StartTransientUnit + JobRemoved round
 *    trip of the same unit shape made by the bench itself over the same bus, interleaved;
 *  - sustained starts per second with 16 concurrent clients, vs 16 concurrent bare starts;
 *  - the CPU each process spent per start, to say where the time goes.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig } from '../src/config/load.js';
import { MachineRegistry, type Machine } from '../src/machines/registry.js';
import { SystemdClient } from '../src/systemd/client.js';
import { unitProperties } from '../src/systemd/unit-spec.js';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client } from '../src/embedded/api-client.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { cpuDuring, watchedProcesses } from './processes.js';
import { inParallel, percentile, round } from './stats.js';

export const START_BENCH_MACHINES = {
  // A light task (no Node start-up per task), in the same unit shape as every task: one that ends
  // while the next starts, and one that keeps running (each ends on SIGTERM at once).
  'bench-sleep': { exec: ['/bin/sleep', '0.3'] },
  'bench-sleep-60': { exec: ['/bin/sleep', '60'] },
};
/** The tasks of a latency run: ending at once (0.3 s) or running on (60 s), on both sides. */
type LatencyMode = 'ending' | 'running';
const LATENCY_MACHINE: Record<LatencyMode, keyof typeof START_BENCH_MACHINES> = { ending: 'bench-sleep', running: 'bench-sleep-60' };

const CLIENTS = 16;
/** What a unit keeps when the bench takes its sandbox away: how it runs and logs, nothing else. */
const UNSANDBOXED = new Set([
  'Description',
  'Slice',
  'Type',
  'RemainAfterExit',
  'ExecStart',
  'LogExtraFields',
  'Environment',
  'SyslogIdentifier',
  'StandardInputFile',
  'StandardOutput',
  'StandardError',
]);
/**
 * What issue 13 added to every task unit (src/systemd/unit-spec.ts): taken away, the unit is the
 * 0.1.0 sandbox, to show what the added hardening costs a start in the same run.
 */
const ADDED_BY_ISSUE_13 = new Set([
  'ProtectProc',
  'ProcSubset',
  'ProtectKernelLogs',
  'ProtectClock',
  'ProtectHostname',
  'RestrictNamespaces',
  'RestrictRealtime',
  'PrivateIPC',
  'CapabilityBoundingSet',
  'AmbientCapabilities',
  'SystemCallArchitectures',
  'SystemCallFilter',
  'SystemCallErrorNumber',
  'RestrictAddressFamilies',
  'UMask',
  'IPAddressDeny',
]);
/** The unit a bare start makes: the task's whole sandbox, 0.1.0's, or none. */
type Sandbox = 'full' | '0.1.0' | 'none';
const SUSTAINED_MS = 5000;
/** Rounds of each side in the sustained comparison, interleaved. */
const SUSTAINED_ROUNDS = 3;

export interface SustainedResult {
  clients: number;
  seconds: number;
  starts: number;
  perSecond: number;
  failures: number;
  /** CPU milliseconds per start, by process. */
  cpuMsPerStart: Record<string, number>;
}

/** One client, starts one after another, each API start followed by a bare one. */
export interface LatencyResult {
  mode: LatencyMode;
  samples: number;
  api: { p50Ms: number; p99Ms: number };
  bare: { p50Ms: number; p99Ms: number };
  p50Ratio: number;
  p99Ratio: number;
  /** CPU milliseconds per pair of starts (one API, one bare), by process, over the whole run. */
  cpuMsPerPair: Record<string, number>;
}

export interface StartBenchResult {
  samples: number;
  /** Tasks that end at once (`/bin/sleep 0.3`), and tasks that keep running (`/bin/sleep 60`). */
  latency: Record<LatencyMode, LatencyResult>;
  sustained: SustainedResult;
  sustainedBare: SustainedResult;
  sustainedRatio: number;
  /** Starts a second of each round, in the order run (API, bare, bare, API, API, bare). */
  sustainedRounds: { api: number[]; bare: number[] };
  /** The same bare starts with 0.1.0's sandbox (without what issue 13 added). */
  sustainedBareEarlierSandbox: SustainedResult;
  /** The same bare starts without the sandbox properties: what systemd does here without them. */
  sustainedBareUnsandboxed: SustainedResult;
  /** CPU milliseconds a second of each process with nothing started (the latency runs' tasks ended and collected). */
  quietCpuMsPerSecond: Record<string, number>;
  /**
   * systemd's signals the runner dropped during the bare rounds, a bare start: the PropertiesChanged of the bare
   * units, their slice and any other unit it does not follow (the runner's own, at most once a second), and the
   * JobRemoved of their jobs: an upper bound on one unit's, start to collection.
   */
  signalsPerUnit: number;
}

/** Starts units the way the runner does, without the runner: the baseline. */
export class BareStarter {
  readonly units: string[] = [];
  private readonly collecting = new Set<Promise<unknown>>();
  /** Units collected once their signals say they ended (collectOnEnd). */
  private readonly ending = new Set<string>();

  private constructor(
    private readonly bus: SystemdClient,
    private readonly machines: MachineRegistry,
    private readonly parametersFile: string,
  ) {
    bus.on('unitChanged', this.onChanged);
  }

  static async connect(systemd: Pick<PrivateSystemd, 'busAddress' | 'root'>): Promise<BareStarter> {
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
    const bus = await SystemdClient.connect((unit) => unit.startsWith('tessia-bench-'));
    const machines = new MachineRegistry(validateConfig({ machines: START_BENCH_MACHINES }).machines);
    // The stdin of every bare unit: one parameters file (the runner writes and deletes one per start).
    const parametersFile = '/run/tessia-bench-parameters.json';
    writeFileSync(`${systemd.root}${parametersFile}`, 'null', { mode: 0o600 });
    return new BareStarter(bus, machines, parametersFile);
  }

  /** `sandbox`: the same unit with less of its sandbox, to show what the properties cost. */
  async start(
    sandbox: Sandbox = 'full',
    machineName: keyof typeof START_BENCH_MACHINES = 'bench-sleep',
    collectOnEnd = false,
  ): Promise<string> {
    const machine: Machine | undefined = this.machines.get(machineName);
    if (!machine) throw new Error(`no bench machine ${machineName}`);
    const id = randomBytes(4).toString('hex');
    const spec = machine.unitSpec({
      taskId: id,
      unitName: `tessia-bench-${id}.service`,
      machineName,
      slice: 'tessia-bench.slice',
      parametersFile: this.parametersFile,
    });
    const keep = {
      full: () => true,
      '0.1.0': (name: string) => !ADDED_BY_ISSUE_13.has(name),
      none: (name: string) => UNSANDBOXED.has(name),
    }[sandbox];
    const properties = unitProperties(spec).filter(([name]) => keep(name));
    if (collectOnEnd) this.collectOnEnd(spec.unitName);
    const result = await this.bus.startWithProperties(spec.unitName, properties);
    if (result !== 'done') throw new Error(`bare start: ${result}`);
    this.units.push(spec.unitName);
    return spec.unitName;
  }

  /**
   * What the runner does at a task's end, done bare when the unit's signals say it has ended (as the
   * runner follows its tasks): systemd's CPU time read, then the unit collected (StopUnit of an
   * active/exited unit). Part of a task's cost: without it, units of this shape (RemainAfterExit=yes)
   * stay loaded. Call before the unit starts.
   */
  collectOnEnd(unit: string): void {
    this.bus.watch(unit);
    this.ending.add(unit);
  }

  private readonly onChanged = ({ unitName, changed }: { unitName: string; changed: Record<string, unknown> }) => {
    if (!this.ending.has(unitName)) return;
    // active/exited: ended (RemainAfterExit=yes); not `inactive`, which a new unit is before it starts.
    const ended = changed['SubState'] === 'exited' || changed['ActiveState'] === 'failed';
    if (!ended) return;
    this.ending.delete(unitName);
    this.bus.unwatch(unitName);
    const index = this.units.indexOf(unitName);
    if (index >= 0) this.units.splice(index, 1);
    const done = this.bus
      .cpuUsage(unitName)
      .then(() => this.bus.stopUnit(unitName))
      .catch(() => this.units.push(unitName))
      .finally(() => this.collecting.delete(done));
    this.collecting.add(done);
  };

  /** Stops the bare units still running (and lets systemd collect them). */
  async stopAll(): Promise<void> {
    await inParallel(this.units.splice(0), CLIENTS, (unit) =>
      this.bus.stopUnitAndWait(unit).then(
        () => {},
        () => {},
      ),
    );
  }

  /** The bare units end by themselves (active/exited): collect them, as the runner does its own. */
  async collectAll(): Promise<void> {
    await Promise.all([...this.collecting]);
    await sleep(500);
    for (const unit of this.units.splice(0)) await this.bus.collectUnit(unit).catch(() => {});
  }

  close(): void {
    this.bus.close();
  }
}

async function droppedSignals(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  // After the runner's default labels ({service="…"}).
  const found = /^tessia_dbus_unit_signals_dropped_total(?:\{[^}]*\})? (\d+)$/m.exec(text);
  if (!found) throw new Error('the runner has no tessia_dbus_unit_signals_dropped_total');
  return Number(found[1]);
}

export async function sustained(
  systemd: PrivateSystemd,
  processes: Record<string, number>,
  startOne: () => Promise<boolean>,
  hostProcesses: Record<string, number> = {},
): Promise<SustainedResult> {
  let starts = 0;
  let failures = 0;
  const began = performance.now();
  const until = began + SUSTAINED_MS;
  const { cpuSeconds } = await cpuDuring(
    systemd,
    processes,
    () =>
      Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (performance.now() < until) {
            if (await startOne()) starts += 1;
            else failures += 1;
          }
        }),
      ),
    hostProcesses,
  );
  const seconds = (performance.now() - began) / 1000;
  const cpuMsPerStart = Object.fromEntries(
    Object.entries(cpuSeconds).map(([name, used]) => [name, round((used * 1000) / Math.max(1, starts), 2)]),
  );
  return { clients: CLIENTS, seconds: round(seconds, 2), starts, perSecond: round(starts / seconds), failures, cpuMsPerStart };
}

/** Rounds of one side as one: starts and seconds summed, CPU a start over all of them. */
export function together(rounds: SustainedResult[]): SustainedResult {
  const starts = rounds.reduce((sum, r) => sum + r.starts, 0);
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  const cpuMsPerStart: Record<string, number> = {};
  for (const r of rounds) {
    for (const [name, ms] of Object.entries(r.cpuMsPerStart)) cpuMsPerStart[name] = (cpuMsPerStart[name] ?? 0) + ms * r.starts;
  }
  return {
    clients: CLIENTS,
    seconds: round(seconds, 2),
    starts,
    perSecond: round(starts / seconds),
    failures: rounds.reduce((sum, r) => sum + r.failures, 0),
    cpuMsPerStart: Object.fromEntries(Object.entries(cpuMsPerStart).map(([name, total]) => [name, round(total / Math.max(1, starts), 2)])),
  };
}

export async function benchStarts(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  samples = 500,
): Promise<StartBenchResult> {
  const api = client(runner.baseUrl, { keepAlive: true });
  const bare = await BareStarter.connect(systemd);
  const processes = await watchedProcesses(systemd, runner.unit, runner.starter?.unit);
  const startByApi = async () => (await api.post('/v1/tasks', { machine: 'bench-sleep', parameters: null })).status === 201;
  try {
    const latency = {
      ending: await latencyRun(api, bare, systemd, processes, 'ending', samples, log),
      running: await latencyRun(api, bare, systemd, processes, 'running', samples, log),
    };
    // API and bare in rounds, interleaved (API, bare, bare, API, …): a drift of the machine over the
    // minute weighs on both sides alike; each side's figures are its rounds together.
    // Each bare unit collected once it has ended (sleep 0.3), as the runner collects its tasks'.
    const startBare = () =>
      bare.start('full', 'bench-sleep', true).then(
        () => true,
        () => false,
      );
    await sleep(1000);
    const quiet = await cpuDuring(systemd, processes, () => sleep(SUSTAINED_MS));
    const quietCpuMsPerSecond = Object.fromEntries(
      Object.entries(quiet.cpuSeconds).map(([name, used]) => [name, round((used * 1000) / (SUSTAINED_MS / 1000), 2)]),
    );
    log(`quiet: nothing started for ${SUSTAINED_MS / 1000} s; CPU ms a second ${JSON.stringify(quietCpuMsPerSecond)}`);
    const apiRounds: SustainedResult[] = [];
    const bareRounds: SustainedResult[] = [];
    // What the runner drops during the bare rounds (their units and slice, any other unit it does not
    // follow), over the bare starts: an upper bound on one bare unit's signals, start to collection.
    let droppedInBare = 0;
    for (let turn = 0; turn < SUSTAINED_ROUNDS * 2; turn++) {
      const apiNow = turn % 4 === 0 || turn % 4 === 3;
      await sleep(1000);
      const droppedBefore = apiNow ? 0 : await droppedSignals(runner.baseUrl);
      (apiNow ? apiRounds : bareRounds).push(await sustained(systemd, processes, apiNow ? startByApi : startBare));
      if (!apiNow) {
        await bare.collectAll();
        // The collections' last signals.
        await sleep(200);
        droppedInBare += (await droppedSignals(runner.baseUrl)) - droppedBefore;
      }
    }
    await bare.collectAll();
    const signalsPerUnit = round(
      droppedInBare /
        Math.max(
          1,
          bareRounds.reduce((sum, r) => sum + r.starts, 0),
        ),
    );
    log(
      `signals (PropertiesChanged, JobRemoved) the runner dropped a bare start, during the bare rounds (an upper bound on one unit's, start to collection): ${signalsPerUnit}`,
    );
    const viaApi = together(apiRounds);
    const viaBus = together(bareRounds);
    log(
      `sustained API: ${CLIENTS} clients, ${viaApi.starts} starts in ${viaApi.seconds} s = ${viaApi.perSecond}/s (rounds: ${apiRounds.map((r) => r.perSecond).join(', ')}), ${viaApi.failures} failures; CPU ms per start ${JSON.stringify(viaApi.cpuMsPerStart)}`,
    );
    log(
      `sustained bare: ${CLIENTS} concurrent StartTransientUnit, ${viaBus.starts} starts in ${viaBus.seconds} s = ${viaBus.perSecond}/s (rounds: ${bareRounds.map((r) => r.perSecond).join(', ')}), ${viaBus.failures} failures; CPU ms per start ${JSON.stringify(viaBus.cpuMsPerStart)}`,
    );
    await bare.collectAll();
    await sleep(1000);
    const earlierSandbox = await sustained(systemd, processes, () =>
      bare.start('0.1.0').then(
        () => true,
        () => false,
      ),
    );
    log(
      `sustained bare, 0.1.0's sandbox: ${earlierSandbox.starts} starts in ${earlierSandbox.seconds} s = ${earlierSandbox.perSecond}/s, ${earlierSandbox.failures} failures; CPU ms per start ${JSON.stringify(earlierSandbox.cpuMsPerStart)}`,
    );
    await bare.collectAll();
    await sleep(1000);
    const unsandboxed = await sustained(systemd, processes, () =>
      bare.start('none').then(
        () => true,
        () => false,
      ),
    );
    log(
      `sustained bare, no sandbox: ${unsandboxed.starts} starts in ${unsandboxed.seconds} s = ${unsandboxed.perSecond}/s, ${unsandboxed.failures} failures; CPU ms per start ${JSON.stringify(unsandboxed.cpuMsPerStart)}`,
    );
    return {
      samples,
      latency,
      sustained: viaApi,
      sustainedBare: viaBus,
      sustainedRatio: round(viaApi.perSecond / viaBus.perSecond, 2),
      sustainedRounds: { api: apiRounds.map((r) => r.perSecond), bare: bareRounds.map((r) => r.perSecond) },
      sustainedBareEarlierSandbox: earlierSandbox,
      sustainedBareUnsandboxed: unsandboxed,
      quietCpuMsPerSecond,
      signalsPerUnit,
    };
  } finally {
    await bare.collectAll();
    bare.close();
  }
}

/**
 * One client: an API start, then a bare start of the same unit shape, `samples` times. `ending`:
 * `/bin/sleep 0.3`, so each start meets the ends of the tasks started just before it (systemd reaps
 * them, releases their dynamic users and cgroups; the runner records and collects its own, the bench
 * collects the bare ones every 50). `running`: `/bin/sleep 60`, nothing ends during the run; all are
 * stopped after it.
 */
async function latencyRun(
  api: ReturnType<typeof client>,
  bare: BareStarter,
  systemd: PrivateSystemd,
  processes: Record<string, number>,
  mode: LatencyMode,
  samples: number,
  log: (line: string) => void,
): Promise<LatencyResult> {
  const machine = LATENCY_MACHINE[mode];
  const apiMs: number[] = [];
  const bareMs: number[] = [];
  const taskIds: string[] = [];
  const { cpuSeconds } = await cpuDuring(systemd, processes, async () => {
    for (let i = 0; i < samples; i++) {
      let began = performance.now();
      const reply = await api.post('/v1/tasks', { machine, parameters: null });
      apiMs.push(performance.now() - began);
      if (reply.status !== 201) throw new Error(`start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
      taskIds.push(String(reply.body.taskId));
      began = performance.now();
      await bare.start('full', machine);
      bareMs.push(performance.now() - began);
      // Collected as it goes, as the runner collects its tasks: neither side piles up ended units.
      if (mode === 'ending' && bare.units.length >= 50) await bare.collectAll();
    }
  });
  if (mode === 'running') {
    await inParallel(taskIds, CLIENTS, async (taskId) => {
      await api.post(`/v1/tasks/${taskId}/stop`);
    });
    await bare.stopAll();
  }
  await bare.collectAll();
  const result: LatencyResult = {
    mode,
    samples,
    api: { p50Ms: round(percentile(apiMs, 50)), p99Ms: round(percentile(apiMs, 99)) },
    bare: { p50Ms: round(percentile(bareMs, 50)), p99Ms: round(percentile(bareMs, 99)) },
    p50Ratio: round(percentile(apiMs, 50) / percentile(bareMs, 50), 2),
    p99Ratio: round(percentile(apiMs, 99) / percentile(bareMs, 99), 2),
    cpuMsPerPair: Object.fromEntries(Object.entries(cpuSeconds).map(([name, used]) => [name, round((used * 1000) / samples, 2)])),
  };
  log(
    `start latency, tasks ${mode === 'ending' ? 'ending at once (sleep 0.3)' : 'running on (sleep 60)'}, ${samples} each: API p50 ${result.api.p50Ms} ms p99 ${result.api.p99Ms} ms; bare p50 ${result.bare.p50Ms} ms p99 ${result.bare.p99Ms} ms; ratio p50 ${result.p50Ratio} p99 ${result.p99Ratio}; CPU ms a pair ${JSON.stringify(result.cpuMsPerPair)}`,
  );
  await sleep(mode === 'running' ? 3000 : 1000);
  return result;
}
