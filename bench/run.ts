/**
 * `npm run bench`: boots the private systemd, starts the runner in it as a service, runs every
 * benchmark with its baseline in the same run, prints the figures and writes bench/results.json.
 * Goals are ratios (absolute times on shared machines are noisy); docs/benchmarks.md has the table.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { REPO_DIR, bootPrivateSystemd } from '../src/embedded/private-systemd.js';
import { mustRun, startRunnerService } from '../src/embedded/runner-service.js';
import { LOG_BENCH_MACHINES, benchLogs } from './logs.js';
import { profileLogReads, profileSerialStartsAndStops, profileStarts } from './profile.js';
import { SCALE_BENCH_MACHINES, benchScale } from './scale.js';
import { START_BENCH_MACHINES, benchStarts } from './starts.js';
import { EVENT_BENCH_MACHINES, benchEvents } from './events.js';
import { benchRetention } from './retention.js';
import { CHECK_BENCH_MACHINES, benchChecks } from './checks.js';
import { RECOVERY_BENCH_MACHINES, benchRecovery } from './recovery.js';
import { STOP_BENCH_MACHINES, benchStops } from './stops.js';
import { MEMORY_BENCH_MACHINES, benchMemory } from './memory.js';
import { PACKAGE_USER, packageEnvironment, packageUser } from './package-environment.js';
import { benchWakeups } from './wakeups.js';
import { COCKPIT_BENCH_MACHINES, benchCockpit } from './cockpit.js';
import { benchAb } from './ab.js';
import { benchPolkit } from './polkit.js';
import { perfProfileStarts, requireTools } from './perf-profile.js';

/**
 * The runner's Unix socket, inside the private system: what the Cockpit page talks to. In a
 * directory of its own, which the runner's user owns (a runner not root cannot make a socket in
 * /run/tessia-test).
 */
const BENCH_API_DIR = '/run/tessia-test/bench-api';
const BENCH_API_SOCKET = `${BENCH_API_DIR}/api.sock`;
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
/** A count from the environment: a whole number, 0 or more, else the run stops before it boots anything. */
function countFrom(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < 0) throw new Error(`${name}=${text}: a whole number, 0 or more`);
  return value;
}
if ((process.env['TESSIA_BENCH'] ?? '').split(',').includes('ab') && !process.env['TESSIA_BENCH_AB']) {
  throw new Error('TESSIA_BENCH=ab needs TESSIA_BENCH_AB=<git revision> to compare with');
}
if ((process.env['TESSIA_BENCH'] ?? '').split(',').includes('perf')) requireTools();
// TESSIA_BENCH_SAMPLES: starts timed one at a time (default 500); in `ab`, of each side (0: none).
const samples = countFrom('TESSIA_BENCH_SAMPLES', 500);
// TESSIA_BENCH_STOP_SAMPLES: tasks stopped, as many bare units (default 200); in `ab`, of each side (0: none).
const stopSamples = countFrom('TESSIA_BENCH_STOP_SAMPLES', 200);
// TESSIA_BENCH_AB_ROUNDS: sustained rounds of each side in `ab` (default 8, two cycles of its balanced order; 0: none).
const abRounds = countFrom('TESSIA_BENCH_AB_ROUNDS', 8);
const booted = await bootPrivateSystemd({ log: say });
process.env['TESSIA_TEST_SYSTEMD_PID'] = String(booted.systemd.pid);
process.once('SIGINT', () => void booted.shutdown().then(() => process.exit(130)));
try {
  const config = {
    machines: {
      ...LOG_BENCH_MACHINES,
      ...START_BENCH_MACHINES,
      ...SCALE_BENCH_MACHINES,
      ...EVENT_BENCH_MACHINES,
      ...CHECK_BENCH_MACHINES,
      ...RECOVERY_BENCH_MACHINES,
      ...STOP_BENCH_MACHINES,
      ...MEMORY_BENCH_MACHINES,
      ...COCKPIT_BENCH_MACHINES,
    },
    // TESSIA_BENCH_LOG_LEVEL: the runner's log level (default: the package's, info, whose entries a
    // start and a stop write: until the ninth session of round two, warn).
    log: { level: process.env['TESSIA_BENCH_LOG_LEVEL'] ?? 'info' },
    limits: { maxActiveTasks: 100000 },
    // Every record a run makes or writes is kept until the end (bench/scale.ts lists 100 000).
    retention: { maxAgeDays: null, maxFinished: null },
    // The benchmarks' clients call over loopback without a token.
    auth: { anonymous: 'write' },
  };
  // TESSIA_BENCH_NODE_FLAGS: node flags for the runner under test (default: what the packaged unit
  // sets in NODE_OPTIONS); its other Environment= variables (MALLOC_ARENA_MAX) are set as well.
  const fromUnit = packageEnvironment();
  const nodeFlags = process.env['TESSIA_BENCH_NODE_FLAGS']?.split(' ').filter(Boolean) ?? fromUnit.nodeFlags;
  const env = fromUnit.env;
  // TESSIA_BENCH_STARTER=0: the runner starts task units itself, as before privilege separation
  // (default: through the privileged starter, as the package runs it).
  const starter = process.env['TESSIA_BENCH_STARTER'] !== '0';
  // TESSIA_BENCH_RUNNER_USER=tessia-task-runner: the runner (and `ab`'s other build) runs as the
  // package's user, with the package's polkit rule (default: root, about whom polkit is never asked).
  const user = process.env['TESSIA_BENCH_RUNNER_USER'] || undefined;
  if (user && !starter)
    throw new Error('TESSIA_BENCH_RUNNER_USER needs the privileged starter: a runner not root cannot start units itself');
  if (user && user !== PACKAGE_USER)
    throw new Error(`TESSIA_BENCH_RUNNER_USER=${user}: only ${PACKAGE_USER}, the user the package's polkit rule names`);
  if (user) await packageUser(booted.systemd, user);
  // TESSIA_BENCH=wakeups,starts,stops,scale,logs,events,retention,checks,recovery,cockpit,profile,memory (default: all) picks benchmarks;
  // not in the default set: ab (with TESSIA_BENCH_AB), perf, polkit, profile-logs, profile-serial (docs/benchmarks.md).
  const chosen = (
    process.env['TESSIA_BENCH'] ?? 'wakeups,starts,stops,scale,logs,events,retention,checks,recovery,cockpit,profile,memory'
  ).split(',');
  // The Cockpit page talks to the runner over its Unix socket: only the runs that measure it have one.
  const runnerConfig = chosen.includes('cockpit') ? { ...config, unixSocket: { path: BENCH_API_SOCKET, mode: '0600' } } : config;
  if (chosen.includes('cockpit')) {
    const owner = user ?? 'root';
    await mustRun(booted.systemd, ['install', '-d', '-o', owner, '-g', owner, '-m', '0750', BENCH_API_DIR]);
  }
  const runner = await startRunnerService(runnerConfig, { nodeFlags, env, starter, ...(user ? { user } : {}) });
  say(starter ? 'task units are started through the privileged starter' : 'the runner starts task units itself');
  say(`the runner runs as ${user ?? 'root'}`);
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  say(`machine: ${JSON.stringify(machine)}`);
  // What a message read costs any process here: the floor under the runner's CPU a task (bench/wakeups.ts).
  const wakeups = chosen.includes('wakeups') ? await benchWakeups(say) : undefined;
  const starts = chosen.includes('starts') ? await benchStarts(runner, booted.systemd, say, samples) : undefined;
  // Not in the default set: this checkout against another revision, interleaved (TESSIA_BENCH=ab TESSIA_BENCH_AB=<revision>).
  const abRevision = process.env['TESSIA_BENCH_AB'];
  const ab =
    chosen.includes('ab') && abRevision
      ? await benchAb(runner, booted.systemd, say, {
          revision: abRevision,
          config,
          nodeFlags,
          env,
          samples,
          stopSamples,
          rounds: abRounds,
          ...(user ? { user } : {}),
        })
      : undefined;
  const stops = chosen.includes('stops') ? await benchStops(runner, booted.systemd, say, stopSamples) : undefined;
  // Not in the default set: StopUnit as root and as the package's user (its polkit rule), TESSIA_BENCH_STOP_SAMPLES in all (TESSIA_BENCH=polkit).
  const polkit = chosen.includes('polkit')
    ? await benchPolkit(booted.systemd, say, { samples: stopSamples, user: PACKAGE_USER })
    : undefined;
  // TESSIA_BENCH_RECORDS: finished tasks in the store during the scale stages (default 100 000);
  // TESSIA_BENCH_CEILING: the last stage starts tasks until one is refused, or this many run
  // (default 6000, past the 4336 dynamic users a host has; 0: no such stage).
  const scale = chosen.includes('scale')
    ? await benchScale(runner, booted.systemd, say, {
        // TESSIA_BENCH_SCALE_SIZES: the stages before the ceiling (default 10,100,1000).
        sizes: (process.env['TESSIA_BENCH_SCALE_SIZES'] ?? '10,100,1000').split(',').filter(Boolean).map(Number),
        ceiling: Number(process.env['TESSIA_BENCH_CEILING'] ?? 6000),
        records: Number(process.env['TESSIA_BENCH_RECORDS'] ?? 100_000),
      })
    : undefined;
  const logs = chosen.includes('logs') ? await benchLogs(runner, booted.systemd, say) : undefined;
  const events = chosen.includes('events') ? await benchEvents(runner, booted.systemd, say) : undefined;
  const retention = chosen.includes('retention') ? await benchRetention(say) : undefined;
  // TESSIA_BENCH_CHECK_SAMPLES: requests of each kind (default 100).
  const checkSamples = Number(process.env['TESSIA_BENCH_CHECK_SAMPLES'] ?? 100);
  const checks = chosen.includes('checks') ? await benchChecks(runner, booted.systemd, say, checkSamples) : undefined;
  // TESSIA_BENCH_RECOVERY_SIZES: tasks running at each SIGKILL (default 0,10,100,1000).
  const recoverySizes = (process.env['TESSIA_BENCH_RECOVERY_SIZES'] ?? '0,10,100,1000').split(',').map(Number);
  const recovery = chosen.includes('recovery') ? await benchRecovery(runner, booted.systemd, say, recoverySizes) : undefined;
  const cockpit = chosen.includes('cockpit') ? await benchCockpit(runner, booted.systemd, BENCH_API_SOCKET, say) : undefined;
  await runner.stop();
  const profile = chosen.includes('profile') ? await profileStarts(config, booted.systemd, 'bench-sleep', say, starter) : undefined;
  // Not in the default set: a profile of the log throughput's reads (TESSIA_BENCH=profile-logs).
  const profileLogs = chosen.includes('profile-logs') ? await profileLogReads(config, booted.systemd, say, starter) : undefined;
  // Not in the default set either: one start, then one stop, at a time (TESSIA_BENCH=profile-serial).
  const profileSerial = chosen.includes('profile-serial')
    ? await profileSerialStartsAndStops(config, booted.systemd, 'bench-stop-sleep', say, starter)
    : undefined;
  // Not in the default set either (needs perf): the runner's and the starter's CPU during sustained starts, counted by the kernel.
  const perf = chosen.includes('perf')
    ? await perfProfileStarts(config, booted.systemd, 'bench-sleep', say, { nodeFlags, env })
    : undefined;
  // A runner of its own, started after the others have stopped: its RSS is its tasks' alone.
  const memory = chosen.includes('memory') ? await benchMemory(config, booted.systemd, say, { nodeFlags, env }, starter) : undefined;
  const results = {
    date: new Date().toISOString(),
    machine,
    starter,
    wakeups,
    starts,
    ab,
    stops,
    polkit,
    scale,
    logs,
    events,
    retention,
    checks,
    recovery,
    cockpit,
    profile,
    profileLogs,
    profileSerial,
    perf,
    memory,
  };
  // TESSIA_BENCH_OUT: where the results go (default bench/results.json; a partial run may keep them apart).
  writeFileSync(resolve(REPO_DIR, process.env['TESSIA_BENCH_OUT'] ?? 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
} finally {
  await booted.shutdown();
}
