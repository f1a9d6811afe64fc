/**
 * Where the runner's time goes on its busiest paths (task starts; reading a task's logs): a second runner with
 * `node --cpu-prof` takes sustained starts from 16 clients; its profile is summed by function
 * (self time) and by module.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client, type Api } from '../src/embedded/api-client.js';
import { readAll } from '../src/embedded/api-streams.js';
import { startRunnerService, type RunnerService } from '../src/embedded/runner-service.js';
import { startTask, waitForJournalLine, waitForState } from '../src/embedded/runner-tasks.js';
import { round } from './stats.js';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds of the monotonic clock (CLOCK_MONOTONIC, as process.hrtime here). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The monotonic clock in the profile's unit: samples before the work began (start-up, warm-up) are not counted. */
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

export interface ProfileResult {
  starts: number;
  /** Milliseconds of the profile not idle, per start. */
  busyMsPerStart: number;
  topFunctions: { name: string; ms: number }[];
  byModule: { module: string; ms: number }[];
}

export async function profileStarts(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  machine: string,
  log: (line: string) => void,
  starter = true,
): Promise<ProfileResult> {
  let starts = 0;
  let from = 0;
  const startFor = async (api: Api, ms: number) => {
    const until = performance.now() + ms;
    let done = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (performance.now() < until) {
          if ((await api.post('/v1/tasks', { machine, parameters: null })).status === 201) done += 1;
        }
      }),
    );
    return done;
  };
  const { runner: profile } = await profiled(config, systemd, starter, async (api) => {
    // Warm-up (modules loaded, code optimised): not counted.
    await startFor(api, 2000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    from = nowMicros();
    starts = await startFor(api, 5000);
    // The tasks end and are collected, as part of what a start costs.
    await new Promise((resolve) => setTimeout(resolve, 2000));
  });
  return logged(summarize(profile, starts, from), `profile of ${starts} starts (after a warm-up)`, 'start', log);
}

/**
 * Where the runner's time goes on one start at a time of tasks that keep running (the latency
 * bench's `running` case), then on one stop at a time of the same tasks (the stop bench's), on a
 * machine not saturated: the profile's busy time is then the runner's CPU, not time it waited for
 * a core.
 */
export async function profileSerialStartsAndStops(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  machine: string,
  log: (line: string) => void,
  starter = true,
): Promise<{ starts: ProfileResult; stops: ProfileResult; starterStarts: ProfileResult | null }> {
  const COUNT = 200;
  const WARM_UP = 20;
  const marks = { starts: 0, stops: 0, end: 0 };
  const done = { starts: 0, stops: 0 };
  const profiles = await profiled(config, systemd, starter, async (api) => {
    const startSome = async (count: number) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const reply = await api.post('/v1/tasks', { machine, parameters: null });
        if (reply.status === 201) ids.push((reply.body as { taskId: string }).taskId);
      }
      return ids;
    };
    const stopAll = async (ids: string[]) => {
      let stopped = 0;
      for (const id of ids) if ((await api.post(`/v1/tasks/${id}/stop`)).status === 200) stopped += 1;
      return stopped;
    };
    // Warm-up of both paths, not counted.
    await stopAll(await startSome(WARM_UP));
    marks.starts = nowMicros();
    const ids = await startSome(COUNT);
    done.starts = ids.length;
    marks.stops = nowMicros();
    done.stops = await stopAll(ids);
    marks.end = nowMicros();
  });
  const starterStarts = profiles.starter
    ? logged(summarize(profiles.starter, done.starts, marks.starts, marks.stops), `the starter, over the same starts`, 'start', log)
    : null;
  return {
    starts: logged(
      summarize(profiles.runner, done.starts, marks.starts, marks.stops),
      `profile of ${done.starts} starts one at a time (tasks running on)`,
      'start',
      log,
    ),
    stops: logged(
      summarize(profiles.runner, done.stops, marks.stops, marks.end),
      `profile of ${done.stops} stops one at a time`,
      'stop',
      log,
    ),
    starterStarts,
  };
}

/**
 * Where the runner's time goes serving a finished task's 100 000 log entries (bench/logs.ts's
 * throughput): the task's output written first, then `GET …/logs` read whole, READS times.
 */
export async function profileLogReads(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  starter = true,
): Promise<ProfileResult> {
  const READS = 3;
  let from = 0;
  const { runner: profile } = await profiled(config, systemd, starter, async (api, baseUrl, runner) => {
    const burst = await startTask(api, 'bench-burst', null);
    await waitForState(api, burst.taskId, ['exited']);
    await waitForJournalLine(runner, burst.taskId, '100000', 60_000);
    from = nowMicros();
    for (let i = 0; i < READS; i++) await readAll(`${baseUrl}/v1/tasks/${burst.taskId}/logs`);
  });
  return logged(summarize(profile, READS, from), `profile of ${READS} reads of 100 000 log entries`, 'read', log);
}

/**
 * A second runner with `node --cpu-prof`, through the privileged starter as the package runs it;
 * the starter under `--cpu-prof` as well (its profile: `starter`).
 */
async function profiled(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  starter: boolean,
  work: (api: Api, baseUrl: string, runner: RunnerService) => Promise<void>,
): Promise<{ runner: CpuProfile; starter: CpuProfile | null }> {
  const dir = `/run/tessia-bench/profile-${process.pid}-${performance.now().toFixed(0)}`;
  mkdirSync(`${systemd.root}${dir}/starter`, { recursive: true });
  const runner = await startRunnerService(config, {
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    starter,
    starterNodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}/starter`],
  });
  try {
    await work(client(runner.baseUrl), runner.baseUrl, runner);
  } finally {
    await runner.stop(); // the profiles are written when node exits
  }
  return { runner: readProfile(systemd, dir, true) as CpuProfile, starter: starter ? readProfile(systemd, `${dir}/starter`, true) : null };
}

function readProfile(systemd: PrivateSystemd, dir: string, required: boolean): CpuProfile | null {
  const file = readdirSync(`${systemd.root}${dir}`).find((name) => name.endsWith('.cpuprofile'));
  if (!file) {
    if (required) throw new Error(`no CPU profile written in ${dir}`);
    return null;
  }
  const text = readFileSync(`${systemd.root}${dir}/${file}`, 'utf8');
  // For a look at the call tree (e.g. in Chrome's DevTools): TESSIA_BENCH_PROFILE_COPY=DIR keeps each profile.
  const copyTo = process.env['TESSIA_BENCH_PROFILE_COPY'];
  if (copyTo) writeFileSync(`${copyTo}/${dir.endsWith('/starter') ? 'starter-' : ''}${file}`, text);
  return JSON.parse(text) as CpuProfile;
}

function logged(result: ProfileResult, what: string, unit: string, log: (line: string) => void): ProfileResult {
  log(
    `${what}: ${result.busyMsPerStart} ms busy per ${unit}; top: ${result.topFunctions
      .slice(0, 8)
      .map((f) => `${f.name} ${f.ms}`)
      .join(', ')}`,
  );
  log(
    `by module: ${result.byModule
      .slice(0, 8)
      .map((m) => `${m.module} ${m.ms}`)
      .join(', ')}`,
  );
  return result;
}

/** `fromMicros`, `untilMicros`: only the samples taken in between (the monotonic clock), e.g. after a warm-up. */
function summarize(profile: CpuProfile, starts: number, fromMicros = 0, untilMicros = Infinity): ProfileResult {
  const selfMicros = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= fromMicros && at <= untilMicros) selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  });
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const micros = selfMicros.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += micros;
    const module =
      url === '' ? '(native, gc)' : url.replace(/.*node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*/, '$1').replace(/.*\/dist\//, 'runner: ');
    const name = `${functionName || '(anonymous)'} ${url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byModule.set(module, (byModule.get(module) ?? 0) + micros);
  }
  const top = <K extends string>(map: Map<string, number>, key: K) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([name, micros]) => ({ [key]: name, ms: round(micros / 1000) }) as Record<K, string> & { ms: number });
  return {
    starts,
    busyMsPerStart: round(busy / 1000 / Math.max(1, starts), 2),
    topFunctions: top(byFunction, 'name'),
    byModule: top(byModule, 'module'),
  };
}
