/**
 * Stop benchmark (issue 17, point 5), against the private systemd, baseline in the same run:
 * `POST /v1/tasks/{id}/stop` until the task is `exited` (the answer says so: the API waits up to
 * tasks.stopWaitSec for the end; else the first GET that does), for a machine that exits at once on
 * SIGTERM, against a bare StopUnit + its JobRemoved (systemd ends a stop job once the unit is
 * inactive, every process gone) of a unit of the same shape, started by the bench over the same bus.
 * Interleaved one by one, the side that goes first alternating; the starts are not timed.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig } from '../src/config/load.js';
import { client, type Api } from '../src/embedded/api-client.js';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { startTask } from '../src/embedded/runner-tasks.js';
import { MachineRegistry, type Machine } from '../src/machines/registry.js';
import { SystemdClient } from '../src/systemd/client.js';
import { unitProperties } from '../src/systemd/unit-spec.js';
import { cpuDuring, watchedProcesses } from './processes.js';
import { percentile, round } from './stats.js';

export const STOP_BENCH_MACHINES = {
  // Runs until stopped, and ends at once on SIGTERM.
  'bench-stop-sleep': { exec: ['/bin/sleep', '600'] },
};
const BARE_PREFIX = 'tessia-bench-stop-';
/** A bare stop unit's name (BareUnits.start). */
export const BARE_STOP_UNIT = /^tessia-bench-stop-[0-9a-f]{8}\.service$/;

export interface StopBenchResult {
  samples: number;
  api: { p50Ms: number; p99Ms: number };
  bare: { p50Ms: number; p99Ms: number };
  p50Ratio: number;
  p99Ratio: number;
  /**
   * From the stop request to the task's unit's `inactive` as a raw PropertiesChanged to the bench's
   * own bus client (systemd's part), and from that signal to the answer (the runner's part after it).
   */
  apiSplit: { untilInactiveSignalP50Ms: number; afterInactiveSignalP50Ms: number; afterInactiveSignalP99Ms: number };
  /**
   * Either side's stop in two parts, as the bench's bus client sees the unit's signals: from the
   * request to `deactivating` (systemd has taken the stop and sent SIGTERM), then to `inactive`.
   */
  phasesP50Ms: Record<'api' | 'bare', { untilDeactivating: number; deactivatingToInactive: number }>;
  /** Stops whose answer was not `exited` yet (a GET had to tell). */
  answeredBeforeExit: number;
  /** CPU milliseconds per stop, by process, over the API's stops and the bare ones apart. */
  cpuMsPerStop: { api: Record<string, number>; bare: Record<string, number> };
  /**
   * The runner's one call at a task's end (Get CPUUsageNSec: systemd keeps the figure when it removes
   * the cgroup), timed apart on bare units: sent the moment the `inactive` signal arrives, and on a
   * running unit for comparison. `gone`: the unit was collected before the answer.
   */
  cpuRead: { atEndP50Ms: number; atEndP99Ms: number; runningP50Ms: number; gone: number };
}

/** Units of the task's shape, started and stopped by the bench itself over its own bus connection. */
export class BareUnits {
  private constructor(
    readonly bus: SystemdClient,
    private readonly machine: Machine,
    private readonly parametersFile: string,
  ) {}

  static async connect(systemd: Pick<PrivateSystemd, 'busAddress' | 'root'>): Promise<BareUnits> {
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
    const bus = await SystemdClient.connect((unit) => unit.startsWith(BARE_PREFIX));
    const machine = new MachineRegistry(validateConfig({ machines: STOP_BENCH_MACHINES }).machines).get('bench-stop-sleep');
    if (!machine) throw new Error('no bench machine');
    const parametersFile = '/run/tessia-bench-stop-parameters.json';
    writeFileSync(`${systemd.root}${parametersFile}`, 'null', { mode: 0o600 });
    return new BareUnits(bus, machine, parametersFile);
  }

  async start(): Promise<string> {
    // A task id's shape (8 hex): the unit's StateDirectory= is built from it as from a task's.
    const id = randomBytes(4).toString('hex');
    const spec = this.machine.unitSpec({
      taskId: id,
      unitName: `${BARE_PREFIX}${id}.service`,
      machineName: 'bench-stop-sleep',
      slice: 'tessia-bench.slice',
      parametersFile: this.parametersFile,
    });
    const result = await this.bus.startWithProperties(spec.unitName, unitProperties(spec));
    if (result !== 'done') throw new Error(`bare start: ${result}`);
    return spec.unitName;
  }

  /** StopUnit until its job is done: the unit is inactive (systemd then collects it by itself). */
  async stop(unit: string): Promise<void> {
    const result = await this.bus.stopUnitAndWait(unit);
    if (result !== 'done') throw new Error(`bare stop: ${result}`);
  }
}

interface ApiStop {
  /** From the request until the task is `exited`. */
  ms: number;
  /** The answer said `exited` (else a GET after it did). */
  answered: boolean;
  began: number;
  ended: number;
}

export async function stopByApi(api: Api, taskId: string): Promise<ApiStop> {
  const began = performance.now();
  const reply = await api.post(`/v1/tasks/${taskId}/stop`);
  if (reply.status !== 200) throw new Error(`stop failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  let ended = performance.now();
  if (reply.body.state === 'exited') return { ms: ended - began, answered: true, began, ended };
  for (;;) {
    // A client polling every 2 ms: what an answer before the end costs, without flooding the runner.
    await sleep(2);
    const { body } = await api.get(`/v1/tasks/${taskId}`);
    ended = performance.now();
    if (body.state === 'exited') return { ms: ended - began, answered: false, began, ended };
    if (performance.now() - began > 30_000) throw new Error(`task ${taskId} still ${body.state} 30 s after its stop`);
  }
}

export async function benchStops(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  samples = 200,
): Promise<StopBenchResult> {
  const api = client(runner.baseUrl, { keepAlive: true });
  const bare = await BareUnits.connect(systemd);
  const processes = await watchedProcesses(systemd, runner.unit, runner.starter?.unit);
  const apiMs: number[] = [];
  const bareMs: number[] = [];
  const untilSignal: number[] = [];
  const afterSignal: number[] = [];
  const inactiveAt = new Map<string, number>();
  // systemd's `deactivating`: it has taken the stop (SIGTERM sent); for both sides, to tell the
  // time before systemd acts from the time it takes.
  const deactivatingAt = new Map<string, number>();
  const phases = {
    api: { untilDeactivating: [] as number[], deactivatingToInactive: [] as number[] },
    bare: { untilDeactivating: [] as number[], deactivatingToInactive: [] as number[] },
  };
  bare.bus.on('unitChanged', ({ unitName, changed }) => {
    if (changed['ActiveState'] === 'deactivating' && !deactivatingAt.has(unitName)) deactivatingAt.set(unitName, performance.now());
    if ((changed['ActiveState'] === 'inactive' || changed['ActiveState'] === 'failed') && !inactiveAt.has(unitName)) {
      inactiveAt.set(unitName, performance.now());
    }
  });
  const phasesOf = (unit: string, began: number, into: { untilDeactivating: number[]; deactivatingToInactive: number[] }) => {
    const deactivating = deactivatingAt.get(unit);
    const inactive = inactiveAt.get(unit);
    if (deactivating !== undefined && inactive !== undefined) {
      into.untilDeactivating.push(deactivating - began);
      into.deactivatingToInactive.push(inactive - deactivating);
    }
    deactivatingAt.delete(unit);
  };
  const cpu = { api: {} as Record<string, number>, bare: {} as Record<string, number> };
  const addCpu = (into: Record<string, number>, used: Record<string, number>) => {
    for (const [name, seconds] of Object.entries(used)) into[name] = (into[name] ?? 0) + seconds;
  };
  let answeredBeforeExit = 0;
  let cpuRead: StopBenchResult['cpuRead'];
  try {
    for (let i = 0; i < samples; i++) {
      const task = await startTask(api, 'bench-stop-sleep', null);
      const unit = await bare.start();
      bare.bus.watch(task.unit);
      bare.bus.watch(unit);
      const viaApi = async () => {
        const { cpuSeconds, result } = await cpuDuring(systemd, processes, () => stopByApi(api, task.taskId));
        addCpu(cpu.api, cpuSeconds);
        apiMs.push(result.ms);
        if (!result.answered) answeredBeforeExit += 1;
        const signalled = inactiveAt.get(task.unit);
        if (signalled !== undefined) {
          untilSignal.push(signalled - result.began);
          afterSignal.push(result.ended - signalled);
        }
        phasesOf(task.unit, result.began, phases.api);
        bare.bus.unwatch(task.unit);
        inactiveAt.delete(task.unit);
      };
      const viaBus = async () => {
        const { cpuSeconds, result } = await cpuDuring(systemd, processes, async () => {
          const began = performance.now();
          await bare.stop(unit);
          return { ms: performance.now() - began, began };
        });
        bareMs.push(result.ms);
        addCpu(cpu.bare, cpuSeconds);
        phasesOf(unit, result.began, phases.bare);
        bare.bus.unwatch(unit);
        inactiveAt.delete(unit);
      };
      if (i % 2 === 0) {
        await viaApi();
        await viaBus();
      } else {
        await viaBus();
        await viaApi();
      }
    }
    cpuRead = await timeCpuReads(bare, Math.min(samples, 100));
  } finally {
    bare.bus.close();
  }
  const perStop = (used: Record<string, number>) =>
    Object.fromEntries(Object.entries(used).map(([name, seconds]) => [name, round((seconds * 1000) / Math.max(1, samples), 2)]));
  const result: StopBenchResult = {
    samples,
    api: { p50Ms: round(percentile(apiMs, 50), 2), p99Ms: round(percentile(apiMs, 99), 2) },
    bare: { p50Ms: round(percentile(bareMs, 50), 2), p99Ms: round(percentile(bareMs, 99), 2) },
    p50Ratio: round(percentile(apiMs, 50) / percentile(bareMs, 50), 2),
    p99Ratio: round(percentile(apiMs, 99) / percentile(bareMs, 99), 2),
    apiSplit: {
      untilInactiveSignalP50Ms: round(percentile(untilSignal, 50), 2),
      afterInactiveSignalP50Ms: round(percentile(afterSignal, 50), 2),
      afterInactiveSignalP99Ms: round(percentile(afterSignal, 99), 2),
    },
    phasesP50Ms: {
      api: {
        untilDeactivating: round(percentile(phases.api.untilDeactivating, 50), 2),
        deactivatingToInactive: round(percentile(phases.api.deactivatingToInactive, 50), 2),
      },
      bare: {
        untilDeactivating: round(percentile(phases.bare.untilDeactivating, 50), 2),
        deactivatingToInactive: round(percentile(phases.bare.deactivatingToInactive, 50), 2),
      },
    },
    answeredBeforeExit,
    cpuMsPerStop: { api: perStop(cpu.api), bare: perStop(cpu.bare) },
    cpuRead,
  };
  log(
    `stop latency over ${samples}: API p50 ${result.api.p50Ms} ms p99 ${result.api.p99Ms} ms; bare StopUnit + JobRemoved p50 ${result.bare.p50Ms} ms p99 ${result.bare.p99Ms} ms; ` +
      `p50 ${result.p50Ratio}×, p99 ${result.p99Ratio}×; API: the unit's inactive signal after ${result.apiSplit.untilInactiveSignalP50Ms} ms (p50), ` +
      `the answer ${result.apiSplit.afterInactiveSignalP50Ms} ms (p50; p99 ${result.apiSplit.afterInactiveSignalP99Ms}) after it; until deactivating / then until inactive (p50): API ${result.phasesP50Ms.api.untilDeactivating} / ${result.phasesP50Ms.api.deactivatingToInactive} ms, bare ${result.phasesP50Ms.bare.untilDeactivating} / ${result.phasesP50Ms.bare.deactivatingToInactive} ms; ${answeredBeforeExit} answers before the end; CPU ms a stop: API ${JSON.stringify(result.cpuMsPerStop.api)}, bare ${JSON.stringify(result.cpuMsPerStop.bare)}; ` +
      `Get CPUUsageNSec at the inactive signal p50 ${cpuRead.atEndP50Ms} ms p99 ${cpuRead.atEndP99Ms} ms (on a running unit ${cpuRead.runningP50Ms} ms; ${cpuRead.gone} gone)`,
  );
  return result;
}

async function timeCpuReads(bare: BareUnits, samples: number): Promise<StopBenchResult['cpuRead']> {
  const atEnd: number[] = [];
  const running: number[] = [];
  let gone = 0;
  for (let i = 0; i < samples; i++) {
    const unit = await bare.start();
    bare.bus.watch(unit);
    let began = performance.now();
    await bare.bus.cpuUsage(unit);
    running.push(performance.now() - began);
    const read = new Promise<void>((resolve) => {
      const onChange = ({ unitName, changed }: { unitName: string; changed: Record<string, unknown> }) => {
        if (unitName !== unit || (changed['ActiveState'] !== 'inactive' && changed['ActiveState'] !== 'failed')) return;
        bare.bus.off('unitChanged', onChange);
        began = performance.now();
        void bare.bus.cpuUsage(unit).then((nsec) => {
          atEnd.push(performance.now() - began);
          if (nsec === null) gone += 1;
          resolve();
        });
      };
      bare.bus.on('unitChanged', onChange);
    });
    await bare.stop(unit);
    await read;
    bare.bus.unwatch(unit);
  }
  return {
    atEndP50Ms: round(percentile(atEnd, 50), 2),
    atEndP99Ms: round(percentile(atEnd, 99), 2),
    runningP50Ms: round(percentile(running, 50), 2),
    gone,
  };
}
