/**
 * What a machine's check costs a start (issue 15), baseline in the same run, interleaved:
 *  - POST /v1/tasks for the same task without a check, with an executable check (/bin/true), with a
 *    tessia class's validate (the guide's countdown class), and with tessia-mesh's EchoMachine
 *    validate (which imports jsonschema through tessia-mesh's task.py);
 *  - bare: a StartTransientUnit + JobRemoved of the check unit's shape running /bin/true (what
 *    systemd costs a check), and the tessia host's check run as a plain process (what Python costs).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { validateConfig } from '../src/config/load.js';
import { client } from '../src/embedded/api-client.js';
import { APP_DIR_INSIDE, REPO_DIR, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { bounded, withoutParameters } from '../src/machines/check-reason.js';
import { MachineRegistry } from '../src/machines/registry.js';
import { SystemdClient } from '../src/systemd/client.js';
import { checkUnitProperties } from '../src/systemd/unit-spec.js';
import { percentile, round } from './stats.js';

const TASK = ['/bin/sleep', '0.3'];
const FIXTURE = `${APP_DIR_INSIDE}/test/fixtures/tessia-mesh/src`;
const EXAMPLES = `${APP_DIR_INSIDE}/docs/examples`;

export const CHECK_BENCH_MACHINES = {
  'bench-no-check': { exec: TASK },
  'bench-check-exec': { exec: TASK, check: ['/bin/true'] },
  'bench-check-python': { tessia: { class: 'countdown_machine:CountdownMachine', pythonPath: [EXAMPLES] } },
  'bench-check-tessia-echo': { tessia: { class: 'task_runner.machines.echo.machine:EchoMachine', pythonPath: [FIXTURE] } },
};

const REQUESTS: [string, unknown][] = [
  ['bench-no-check', null],
  ['bench-check-exec', null],
  ['bench-check-python', { from: 1 }],
  ['bench-check-tessia-echo', ['echo checked']],
];

interface Latency {
  p50Ms: number;
  p99Ms: number;
}

export interface CheckBenchResult {
  samples: number;
  /** POST /v1/tasks until the task runs, by machine. */
  api: Record<string, Latency>;
  /** A bare oneshot unit of the check's shape running /bin/true, through the same bus. */
  bareCheckUnit: Latency;
  /** The tessia host's check of each class, as a plain process (python start-up and imports). */
  bareHost: Record<string, Latency>;
  /** What a check adds to a start's p50, in ms: API with it minus API without. */
  addedP50Ms: Record<string, number>;
  /** Scrubbing a 500-character reason against the largest parameters, worst cases, vs parsing them. */
  scrub: Record<string, { scrubMs: number; parseMs: number }>;
}

const latency = (values: number[]): Latency => ({ p50Ms: round(percentile(values, 50)), p99Ms: round(percentile(values, 99)) });

export async function benchChecks(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  samples = 100,
): Promise<CheckBenchResult> {
  const api = client(runner.baseUrl);
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
  const bus = await SystemdClient.connect((unit) => unit.startsWith('tessia-bench-check-'));
  const machine = new MachineRegistry(validateConfig({ machines: CHECK_BENCH_MACHINES }).machines).get('bench-check-exec');
  if (!machine) throw new Error('no bench machine');
  const parametersFile = '/run/tessia-bench-check-parameters.json';
  writeFileSync(`${systemd.root}${parametersFile}`, 'null', { mode: 0o600 });
  const apiMs: Record<string, number[]> = Object.fromEntries(REQUESTS.map(([name]) => [name, []]));
  const hostMs: Record<string, number[]> = { 'bench-check-python': [], 'bench-check-tessia-echo': [] };
  const bareMs: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      for (const [name, parameters] of REQUESTS) {
        const began = performance.now();
        const reply = await api.post('/v1/tasks', { machine: name, parameters });
        apiMs[name]?.push(performance.now() - began);
        if (reply.status !== 201) throw new Error(`${name}: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      const id = `${process.pid.toString(16)}${i.toString(16)}`.padStart(16, '0').slice(-16);
      const spec = machine.checkUnitSpec({
        checkId: id,
        unitName: `tessia-bench-check-${id}.service`,
        slice: 'tessia-bench.slice',
        parametersFile,
        reasonFile: '/run/tessia-bench-check-reason',
      });
      let began = performance.now();
      const result = await bus.startWithProperties(spec.unitName, checkUnitProperties(spec));
      bareMs.push(performance.now() - began);
      if (result !== 'done') throw new Error(`bare check unit: ${result}`);
      for (const [name, parameters] of REQUESTS.slice(2)) {
        const tessia = CHECK_BENCH_MACHINES[name as 'bench-check-python'].tessia;
        const argv = hostArgv(tessia.class, tessia.pythonPath[0] ?? '');
        const stdin = openSync(parametersOf(parameters), 'r');
        began = performance.now();
        const ran = spawnSync(argv[0] ?? '', argv.slice(1), { stdio: [stdin, 'pipe', 'pipe'], env: { TESSIA_MACHINE: name } });
        hostMs[name]?.push(performance.now() - began);
        closeSync(stdin);
        if (ran.status !== 0) throw new Error(`host check of ${name}: ${ran.status} ${ran.stderr.toString()}`);
      }
    }
  } finally {
    bus.close();
  }
  const api50 = (name: string) => percentile(apiMs[name] ?? [], 50);
  const result: CheckBenchResult = {
    samples,
    api: Object.fromEntries(Object.entries(apiMs).map(([name, values]) => [name, latency(values)])),
    bareCheckUnit: latency(bareMs),
    bareHost: Object.fromEntries(Object.entries(hostMs).map(([name, values]) => [name, latency(values)])),
    addedP50Ms: Object.fromEntries(REQUESTS.slice(1).map(([name]) => [name, round(api50(name) - api50('bench-no-check'))])),
    scrub: benchScrub(log),
  };
  log(`checks over ${samples}: ${JSON.stringify(result)}`);
  return result;
}

/**
 * The starter's CPU for one rejected check's reason (src/machines/check-reason.ts), in the worst
 * cases a client can build within limits.maxParameterBytes (256 KiB), against the bare baseline of
 * JSON.parse and JSON.stringify of the same parameters, which every check pays anyway.
 */
export function benchScrub(log: (line: string) => void, rounds = 5): Record<string, { scrubMs: number; parseMs: number }> {
  const cases: Record<string, [string, unknown]> = {
    'one long value, a reason of near misses': ['aaaaab '.repeat(71), { s: 'a'.repeat(256 * 1024) }],
    '128 Ki tiny values': ['x'.repeat(500), Array.from({ length: 128 * 1024 }, () => 1)],
    'a value NFKC expands 18×': ['\ufdfa'.repeat(500), ['\ufdfa'.repeat(87_000)]],
    '37 000 distinct long words, 80 of them in the reason': [
      Array.from({ length: 80 }, (_, i) => `w${String(i).padStart(5, '0')}`).join(' '),
      Array.from({ length: 37_000 }, (_, i) => `w${String(i).padStart(5, '0')}`),
    ],
  };
  const figures: Record<string, { scrubMs: number; parseMs: number }> = {};
  for (const [name, [reason, parameters]] of Object.entries(cases)) {
    const text = JSON.stringify(parameters);
    const scrub: number[] = [];
    const parse: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let began = performance.now();
      JSON.stringify(JSON.parse(text));
      parse.push(performance.now() - began);
      began = performance.now();
      withoutParameters(bounded(reason), parameters);
      scrub.push(performance.now() - began);
    }
    figures[name] = { scrubMs: round(percentile(scrub, 50)), parseMs: round(percentile(parse, 50)) };
  }
  log(`scrubbing a reason, worst cases (p50 of ${rounds}): ${JSON.stringify(figures)}`);
  return figures;
}

const scratch = mkdtempSync(join(tmpdir(), 'tessia-bench-checks-'));
/** A file holding the parameters: the host reads its stdin as the task's, a regular file. */
function parametersOf(parameters: unknown): string {
  const path = join(scratch, 'parameters.json');
  writeFileSync(path, JSON.stringify(parameters));
  return path;
}

/** The host's check, outside systemd: the repository's copy. */
function hostArgv(className: string, pythonPath: string): string[] {
  const outside = pythonPath.replace(APP_DIR_INSIDE, REPO_DIR);
  return ['/usr/bin/python3', '-I', '-B', `${REPO_DIR}/src/machines/tessia/host.py`, 'check', '--class', className, '--path', outside];
}
