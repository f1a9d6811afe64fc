/**
 * Two builds of the runner side by side (TESSIA_BENCH=ab, TESSIA_BENCH_AB=<git revision>): this
 * checkout's (A) and the revision's (B), each a service with its own privileged starter, in the same
 * private systemd, measured in interleaved rounds (starts and stops: each phase's sides in every order in turn, orderOf; sustained
 * rounds: balancedOrderOf) against each other and against bare
 * starts of the same unit shape. Two runs at different moments do not compare below a millisecond or
 * two of CPU a start here (docs/benchmarks.md); rounds a few seconds apart do.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_DIR_INSIDE, REPO_DIR, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import { startRunnerService, type RunnerService } from '../src/embedded/runner-service.js';
import { client } from '../src/embedded/api-client.js';
import { startTask } from '../src/embedded/runner-tasks.js';
import { watchedProcesses } from './processes.js';
import { BareStarter, sustained, together, type SustainedResult } from './starts.js';
import { inParallel, percentile, round } from './stats.js';
import { FRONT_ENV } from './http-front.js';
import { JobTimeline, phasesP50, type StartPhases } from './job-timeline.js';
import { BareUnits, stopByApi } from './stops.js';

/**
 * The i-th of all the orders of `sides`, in turn: over a multiple of their number, each side goes
 * right after each other one equally often (a rotation keeps the same one before each).
 */
export function orderOf<T>(sides: readonly T[], i: number): T[] {
  const all = permutations(sides);
  return all[i % all.length] ?? [...sides];
}

/**
 * The i-th row of a balanced Latin square of `sides` (an even number of them: Williams' design):
 * over each whole cycle of rows (as many as sides), each side is in each place once and goes right
 * after each other one once. Fewer rounds than orderOf's every order (4 sides: 4 rows, not 24).
 */
export function balancedOrderOf<T>(sides: readonly T[], i: number): T[] {
  const n = sides.length;
  if (n % 2 !== 0) throw new Error('a balanced order needs an even number of sides');
  // First row 0, 1, n-1, 2, n-2, …; row r adds r to each (mod n).
  const first = Array.from({ length: n }, (_, k) => (k === 0 ? 0 : k % 2 === 1 ? (k + 1) / 2 : n - k / 2));
  return first.map((place) => sides[(place + i) % n] as T);
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

export interface AbSide {
  revision: string;
  sustained: SustainedResult;
  rounds: number[];
  latency: { p50Ms: number; p99Ms: number };
}

export interface AbResult {
  /** What the run was sized with (a phase of 0 did not run: its figures are null). */
  settings: { samples: number; stopSamples: number; rounds: number; runnerUser: string; logLevel: string; frontFollows: boolean };
  a: AbSide;
  b: AbSide;
  bare: { sustained: SustainedResult; rounds: number[]; latency: { p50Ms: number; p99Ms: number } };
  /**
   * The same bare starts (one at a time) and stops made through bench/http-front.ts: a node:http
   * server in a process of its own that makes the bare call and answers when it is done. The floor of
   * any HTTP API over systemd here; `overBare`: its p50 over the bare side's. `sustained`: its
   * rounds beside the others' (tasks that end at once, each followed, its CPU time read and collected
   * as the runner does), with the front's own CPU a start (`cpuMsPerStart.front`).
   */
  front: { latency: { p50Ms: number; p99Ms: number; overBare: number }; sustained: SustainedResult; rounds: number[] };
  /**
   * Each side's starts one at a time in three parts, p50 of each, by the JobNew and JobRemoved of
   * its unit as another bus connection of the bench read them (bench/job-timeline.ts): before
   * systemd has the job, the job, and after the job's end until the answer.
   */
  startPhases: Record<Side, ReturnType<typeof phasesP50>>;
  /**
   * `POST …/stop` until exited (the answer, else the GETs that follow it), for a task that ends at
   * once on SIGTERM, against a bare StopUnit + JobRemoved of a unit of the same shape: an A task, a
   * B task and a bare unit started (not timed), then stopped in turn, in each of their orders in
   * turn (orderOf). `front`: one more bare unit, stopped through the HTTP front.
   */
  stops: Record<Side, { p50Ms: number; p99Ms: number }> & {
    p50AOverBare: number;
    p50BOverBare: number;
    p50AOverB: number;
    p50FrontOverBare: number;
    /** A's p50 over the front's: the runner's own part, beyond what an HTTP front costs. */
    p50AOverFront: number;
    /**
     * Minimal calls, p50, each once between the stops, 20 ms after the starts, in every order in
     * turn: `GET /healthz` of A and of B (their middleware; no store, no D-Bus), the same request to the
     * HTTP front, which answers `{}` in a process of its own (Node.js and TCP alone), and a bare
     * `Get` of a running unit's CPUUsageNSec (through dbus-daemon to systemd and back). Both runners
     * are called, so neither comes to its stops warmer.
     */
    floorP50Ms: Record<FloorCall, number>;
    /** Stops whose answer was not `exited` yet (a GET had to tell), by side. */
    answeredBeforeExit: Record<'a' | 'b', number>;
  };
  /** Sustained rates over one another (from starts and seconds, not from the rounded rates) and A's and B's start p50 over bare's; each rounded to 3 places. */
  ratios: {
    aOverB: number;
    aOverBare: number;
    bOverBare: number;
    frontOverBare: number;
    latencyP50AOverBare: number;
    latencyP50BOverBare: number;
  };
}

/**
 * The revision's build, made once into .state/bench-ab/<commit> (inside the checkout, so the private
 * system sees it under /run/tessia-app), with this checkout's node_modules.
 */
export function buildRevision(revision: string, log: (line: string) => void): { commit: string; appDir: string } {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
  const relative = join('.state', 'bench-ab', commit);
  const directory = join(REPO_DIR, relative);
  if (!existsSync(join(directory, 'dist', 'cli', 'main.js'))) {
    log(`building ${revision} (${commit}) in ${relative}`);
    rmSync(directory, { recursive: true, force: true });
    mkdirSync(directory, { recursive: true });
    const archive = join(REPO_DIR, '.state', 'bench-ab', `${commit}.tar`);
    execFileSync('git', ['archive', '--output', archive, commit], { cwd: REPO_DIR, stdio: 'inherit' });
    execFileSync('tar', ['-x', '-f', archive, '-C', directory], { stdio: 'inherit' });
    rmSync(archive);
    // Its own dependencies when its lockfile differs from this checkout's (one was added or removed since).
    const sameLock =
      readFileSync(join(directory, 'package-lock.json'), 'utf8') === readFileSync(join(REPO_DIR, 'package-lock.json'), 'utf8');
    if (sameLock) symlinkSync(join('..', '..', '..', 'node_modules'), join(directory, 'node_modules'));
    else execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: directory, stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: directory, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return { commit, appDir: `${APP_DIR_INSIDE}/${relative}` };
}

export async function benchAb(
  runnerA: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  options: {
    revision: string;
    config: Record<string, unknown>;
    nodeFlags: string[];
    env: Record<string, string>;
    /** Starts of each side, one at a time (0: none). */
    samples: number;
    /** Stops of each side (0: none). */
    stopSamples: number;
    /** Sustained rounds of each side (0: none). */
    rounds: number;
    /** The user both runners run as (runner A was started so: RunnerServiceOptions.user). (Default: root) */
    user?: string;
  },
): Promise<AbResult> {
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_DIR, encoding: 'utf8' }).trim() !== '';
  const revisionA = `${head}${dirty ? ' with uncommitted changes' : ''}`;
  // Whole cycles of orders (starts and stops: 4 sides and the 4 floor calls, 24 orders; rounds: 4 rows, balancedOrderOf): else some orders come more often.
  for (const [name, count, cycle] of [
    ['TESSIA_BENCH_SAMPLES', options.samples, 24],
    ['TESSIA_BENCH_STOP_SAMPLES', options.stopSamples, 24],
    ['TESSIA_BENCH_AB_ROUNDS', options.rounds, SIDES.length],
  ] as const) {
    if (count % cycle !== 0) log(`${name}=${count} is not a multiple of ${cycle}: its orders do not come equally often`);
  }
  const { commit, appDir } = buildRevision(options.revision, log);
  const runnerB = await startRunnerService(options.config, {
    nodeFlags: options.nodeFlags,
    env: options.env,
    starter: true,
    appDir,
    ...(options.user ? { user: options.user } : {}),
  });
  let bareToClose: BareStarter | undefined;
  let frontToClose: Awaited<ReturnType<typeof httpFront>> | undefined;
  try {
    const bare = (bareToClose = await BareStarter.connect(systemd));
    const front = (frontToClose = await httpFront(systemd));
    const watchedA = await watchedProcesses(systemd, runnerA.unit, runnerA.starter?.unit);
    const watchedB = await watchedProcesses(systemd, runnerB.unit, runnerB.starter?.unit);
    const processes: Record<string, number> = {
      systemd: watchedA['systemd'] ?? 1,
      'dbus-daemon': watchedA['dbus-daemon'] ?? 0,
      journald: watchedA['journald'] ?? 0,
      'runner A': watchedA['runner'] ?? 0,
      'starter A': watchedA['starter'] ?? 0,
      'runner B': watchedB['runner'] ?? 0,
      'starter B': watchedB['starter'] ?? 0,
    };
    const apiA = client(runnerA.baseUrl, { keepAlive: true });
    const apiB = client(runnerB.baseUrl, { keepAlive: true });
    const startBy = (api: ReturnType<typeof client>) => async () =>
      (await api.post('/v1/tasks', { machine: 'bench-sleep', parameters: null })).status === 201;
    const startBare = () =>
      bare.start('full', 'bench-sleep', true).then(
        () => true,
        () => false,
      );

    // One client, tasks that keep running: A, B, bare and front starts in turn, in every order in turn.
    const latencyMs: Record<Side, number[]> = { a: [], b: [], bare: [], front: [] };
    const phases: Record<Side, StartPhases[]> = { a: [], b: [], bare: [], front: [] };
    const running: [ReturnType<typeof client>, string][] = [];
    const timeline = await JobTimeline.connect();
    try {
      for (let i = 0; i < options.samples; i++) {
        for (const side of orderOf(SIDES, i)) {
          const began = performance.now();
          let unit: string;
          if (side === 'bare') unit = await bare.start('full', 'bench-sleep-60');
          else if (side === 'front') {
            const reply = await front.api.post('/start');
            if (reply.status !== 201) throw new Error(`front start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
            unit = String(reply.body.unit);
          } else {
            const api = side === 'a' ? apiA : apiB;
            const reply = await api.post('/v1/tasks', { machine: 'bench-sleep-60', parameters: null });
            if (reply.status !== 201) throw new Error(`start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
            running.push([api, String(reply.body.taskId)]);
            unit = String(reply.body.unit);
          }
          const answered = performance.now();
          latencyMs[side].push(answered - began);
          // The JobRemoved may be read a moment after the answer: wait for it (outside the timing).
          await sleep(2);
          const split = timeline.phases(unit, began, answered);
          if (split) phases[side].push(split);
        }
      }
    } finally {
      timeline.close();
    }
    const startPhases = Object.fromEntries(SIDES.map((side) => [side, phasesP50(phases[side])])) as AbResult['startPhases'];
    await inParallel(running, 16, async ([api, taskId]) => {
      await api.post(`/v1/tasks/${taskId}/stop`);
    });
    await bare.stopAll();
    await bare.collectAll();
    await mustAnswer(front.api.post('/stop-all'), 'the front did not stop and collect its units');
    const latency = (side: Side) => ({
      p50Ms: round(percentile(latencyMs[side], 50)),
      p99Ms: round(percentile(latencyMs[side], 99)),
    });
    log(
      `A/B start latency, running on, ${options.samples} each: A p50 ${latency('a').p50Ms} p99 ${latency('a').p99Ms} ms; B p50 ${latency('b').p50Ms} p99 ${latency('b').p99Ms} ms; bare p50 ${latency('bare').p50Ms} p99 ${latency('bare').p99Ms} ms; front p50 ${latency('front').p50Ms} p99 ${latency('front').p99Ms} ms; until JobNew / the job / after JobRemoved, p50: ${SIDES.map((side) => `${side} ${startPhases[side].untilJobNewMs} / ${startPhases[side].jobMs} / ${startPhases[side].afterJobMs} ms (${startPhases[side].starts})`).join('; ')}`,
    );
    const stops = await stopsInTurn({ a: apiA, b: apiB, front: front.api }, systemd, options.stopSamples);
    // The front's stop connection, which every job's end would wake, is not carried into its sustained rounds.
    await mustAnswer(front.api.post('/stops-done'), 'the front did not close its stop connection');
    log(
      `A/B stops, ${options.stopSamples} each: A p50 ${stops.a.p50Ms} p99 ${stops.a.p99Ms} ms; B p50 ${stops.b.p50Ms} p99 ${stops.b.p99Ms} ms; bare p50 ${stops.bare.p50Ms} p99 ${stops.bare.p99Ms} ms; front p50 ${stops.front.p50Ms} p99 ${stops.front.p99Ms} ms; GET /healthz of A p50 ${stops.floorP50Ms.runnerHealthzA} ms, of B ${stops.floorP50Ms.runnerHealthzB} ms, of the front ${stops.floorP50Ms.frontHealthz} ms, a bare Get ${stops.floorP50Ms.dbusGet} ms; answered before the end ${JSON.stringify(stops.answeredBeforeExit)}; A/bare ${stops.p50AOverBare}, B/bare ${stops.p50BOverBare}, A/B ${stops.p50AOverB}, front/bare ${stops.p50FrontOverBare}, A/front ${stops.p50AOverFront}`,
    );
    await sleep(3000);

    // Sustained: A, B, bare and front rounds, in a balanced order (balancedOrderOf). The front's
    // tasks end at once as the others do; it follows each, reads its CPU time and collects it.
    const rounds: Record<Side, SustainedResult[]> = { a: [], b: [], bare: [], front: [] };
    const startByFront = async () => (await front.api.post('/start-ending')).status === 201;
    const hostProcesses = { front: front.pid };
    for (let turn = 0; turn < options.rounds; turn++) {
      for (const side of balancedOrderOf(SIDES, turn)) {
        await sleep(1000);
        const startOne = { a: startBy(apiA), b: startBy(apiB), bare: startBare, front: startByFront }[side];
        rounds[side].push(await sustained(systemd, processes, startOne, hostProcesses));
        if (side === 'bare') await bare.collectAll();
        if (side === 'front') await mustAnswer(front.api.post('/stop-all'), 'the front did not stop and collect its units');
      }
    }
    const side = (key: 'a' | 'b', revision: string): AbSide => {
      const all = together(rounds[key]);
      const label = key === 'a' ? 'A' : 'B';
      log(
        `A/B sustained ${label} (${revision}): ${all.perSecond}/s (rounds ${rounds[key].map((r) => r.perSecond).join(', ')}), ${all.failures} failures; runner ${all.cpuMsPerStart[`runner ${label}`]} ms, starter ${all.cpuMsPerStart[`starter ${label}`]} ms of CPU a start; all ${JSON.stringify(all.cpuMsPerStart)}`,
      );
      return { revision, sustained: all, rounds: rounds[key].map((r) => r.perSecond), latency: latency(key) };
    };
    const a = side('a', revisionA);
    const b = side('b', commit);
    const bareAll = together(rounds.bare);
    log(
      `A/B sustained bare: ${bareAll.perSecond}/s (rounds ${rounds.bare.map((r) => r.perSecond).join(', ')}); all ${JSON.stringify(bareAll.cpuMsPerStart)}`,
    );
    const frontAll = together(rounds.front);
    log(
      `A/B sustained front: ${frontAll.perSecond}/s (rounds ${rounds.front.map((r) => r.perSecond).join(', ')}), ${frontAll.failures} failures; the front ${frontAll.cpuMsPerStart['front']} ms of CPU a start; all ${JSON.stringify(frontAll.cpuMsPerStart)}`,
    );
    const ratios = {
      aOverB: rateOver(a.sustained, b.sustained),
      aOverBare: rateOver(a.sustained, bareAll),
      bOverBare: rateOver(b.sustained, bareAll),
      frontOverBare: rateOver(frontAll, bareAll),
      latencyP50AOverBare: round(a.latency.p50Ms / latency('bare').p50Ms, 3),
      latencyP50BOverBare: round(b.latency.p50Ms / latency('bare').p50Ms, 3),
    };
    log(`A/B ratios: ${JSON.stringify(ratios)}`);
    return {
      settings: {
        samples: options.samples,
        stopSamples: options.stopSamples,
        rounds: options.rounds,
        runnerUser: options.user ?? 'root',
        logLevel: (options.config['log'] as { level?: string } | undefined)?.level ?? 'info',
        // The front's starts one at a time only: in its sustained rounds it follows every unit (to collect it at its end).
        frontFollows: process.env[FRONT_ENV.follows] === '1',
      },
      a,
      b,
      bare: { sustained: bareAll, rounds: rounds.bare.map((r) => r.perSecond), latency: latency('bare') },
      front: {
        latency: { ...latency('front'), overBare: round(percentile(latencyMs.front, 50) / percentile(latencyMs.bare, 50), 3) },
        sustained: frontAll,
        rounds: rounds.front.map((r) => r.perSecond),
      },
      startPhases,
      stops,
      ratios,
    };
  } finally {
    await bareToClose?.collectAll();
    bareToClose?.close();
    frontToClose?.close();
    await runnerB.stop();
  }
}

/** One sustained side's rate over another's, from their starts and seconds (not the rounded rates). */
function rateOver(side: SustainedResult, other: SustainedResult): number {
  return round(side.starts / side.seconds / (other.starts / other.seconds), 3);
}

/** A request to the front that must succeed (2xx), else the run stops with `why`. */
async function mustAnswer(reply: Promise<{ status: number }>, why: string): Promise<void> {
  const { status } = await reply;
  if (status < 200 || status >= 300) throw new Error(`${why}: ${status}`);
}

const SIDES = ['a', 'b', 'bare', 'front'] as const;
type Side = (typeof SIDES)[number];
const FLOOR_CALLS = ['runnerHealthzA', 'runnerHealthzB', 'frontHealthz', 'dbusGet'] as const;
type FloorCall = (typeof FLOOR_CALLS)[number];
/** The floor's calls are made this long after the starts before them. */
const FLOOR_SETTLE_MS = 20;

async function stopsInTurn(
  apis: Record<'a' | 'b' | 'front', ReturnType<typeof client>>,
  systemd: PrivateSystemd,
  samples: number,
): Promise<AbResult['stops']> {
  const bare = await BareUnits.connect(systemd);
  const answeredBeforeExit = { a: 0, b: 0 };
  const ms: Record<Side, number[]> = { a: [], b: [], bare: [], front: [] };
  const floor: Record<FloorCall, number[]> = { runnerHealthzA: [], runnerHealthzB: [], frontHealthz: [], dbusGet: [] };
  try {
    for (let i = 0; i < samples; i++) {
      const tasks = {
        a: await startTask(apis.a, 'bench-stop-sleep', null),
        b: await startTask(apis.b, 'bench-stop-sleep', null),
      };
      const unit = await bare.start();
      const frontUnit = await bare.start();
      // Once the starts have settled, the minimal calls, each first in turn.
      await sleep(FLOOR_SETTLE_MS);
      const calls: Record<FloorCall, () => Promise<unknown>> = {
        runnerHealthzA: () => apis.a.get('/healthz'),
        runnerHealthzB: () => apis.b.get('/healthz'),
        frontHealthz: () => apis.front.get('/healthz'),
        dbusGet: () => bare.bus.cpuUsage(unit),
      };
      for (const name of orderOf(FLOOR_CALLS, i)) {
        const began = performance.now();
        await calls[name]();
        floor[name].push(performance.now() - began);
      }
      for (const side of orderOf(SIDES, i)) {
        if (side === 'bare') {
          const began = performance.now();
          await bare.stop(unit);
          ms.bare.push(performance.now() - began);
        } else if (side === 'front') {
          const began = performance.now();
          const reply = await apis.front.post('/stop', { unit: frontUnit });
          if (reply.status !== 200) throw new Error(`front stop failed: ${reply.status} ${JSON.stringify(reply.body)}`);
          ms.front.push(performance.now() - began);
        } else {
          const stop = await stopByApi(apis[side], tasks[side].taskId);
          ms[side].push(stop.ms);
          if (!stop.answered) answeredBeforeExit[side] += 1;
        }
      }
    }
  } finally {
    bare.bus.close();
  }
  const figures = (side: Side) => ({ p50Ms: round(percentile(ms[side], 50), 2), p99Ms: round(percentile(ms[side], 99), 2) });
  const p50 = (side: Side) => percentile(ms[side], 50);
  return {
    a: figures('a'),
    b: figures('b'),
    bare: figures('bare'),
    front: figures('front'),
    p50AOverBare: round(p50('a') / p50('bare'), 3),
    p50BOverBare: round(p50('b') / p50('bare'), 3),
    p50AOverB: round(p50('a') / p50('b'), 3),
    p50FrontOverBare: round(p50('front') / p50('bare'), 3),
    p50AOverFront: round(p50('a') / p50('front'), 3),
    floorP50Ms: Object.fromEntries(FLOOR_CALLS.map((name) => [name, round(percentile(floor[name], 50), 3)])) as Record<FloorCall, number>,
    answeredBeforeExit,
  };
}

/** bench/http-front.ts in a process of its own, on the private system's bus, as root like the bare side. */
async function httpFront(systemd: PrivateSystemd): Promise<{ api: ReturnType<typeof client>; pid: number; close: () => void }> {
  const secret = randomBytes(16).toString('hex');
  // tsx's loader only, found in this checkout: the bench's own flags (an --inspect, NODE_OPTIONS) are not a root child's.
  const { NODE_OPTIONS: _flags, NODE_PATH: _path, ...inherited } = process.env;
  const server = spawn(process.execPath, ['--import', 'tsx', join(REPO_DIR, 'bench', 'http-front.ts')], {
    cwd: REPO_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...inherited, [FRONT_ENV.busAddress]: systemd.busAddress, [FRONT_ENV.root]: systemd.root, [FRONT_ENV.secret]: secret },
  });
  const close = () => server.kill();
  // Its port, or a clear failure (the process gone or silent), never a wait without end.
  const port = await Promise.race([
    once(server.stdout, 'data').then(([line]) => String(line).trim()),
    once(server, 'exit').then(([code]) => Promise.reject(new Error(`the HTTP front exited (${String(code)}) before it listened`))),
    sleep(20_000).then(() => Promise.reject(new Error('the HTTP front did not listen within 20 s'))),
  ]).catch((error: unknown) => {
    close();
    throw error;
  });
  if (server.pid === undefined) throw new Error('the HTTP front has no PID');
  return { api: client(`http://127.0.0.1:${port}/${secret}`, { keepAlive: true }), pid: server.pid, close };
}
