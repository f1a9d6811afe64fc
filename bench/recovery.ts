/**
 * Recovery benchmark (issue 17, point 4): N tasks running (N = 0, 10, 100, 1000), the runner's main
 * process SIGKILLed, a tenth of the tasks released while it is down (half of those exit 0, half 3),
 * the runner started again; measured from its new main process's start, and from the SIGKILL, until
 * `/readyz` answers 200 and every task's record is right (the ended ones `exited` with their real
 * code, the others still `running`). The stage with 0 tasks is the runner's own start.
 *
 * Bare baseline, same stage, taken while the runner is down on exactly the units its recovery then
 * finds: the bench's own D-Bus client reading them as recovery reads them — one ListUnitsByPatterns,
 * then the InvocationID of each running unit and a whole snapshot (GetUnit + 11 Gets) of each ended
 * one — and as recovery read them before issue 17 (a whole snapshot of every unit).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SystemdClient } from '../src/systemd/client.js';
import { TASK_UNIT_GLOB, unitNameOf } from '../src/tasks/unit-names.js';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import { client, type Api } from '../src/embedded/api-client.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { cpuSeconds, mainPid } from './processes.js';
import { inParallel, round } from './stats.js';

const GATE_DIR = '/run/tessia-bench';
/** Opened while the runner is down. */
const DOWN_GATE = `${GATE_DIR}/recovery-down`;
/** Opened once the stage is measured: the tasks that ran through the restart end then. */
const UP_GATE = `${GATE_DIR}/recovery-up`;

/** The exit code of each machine's task once its gate opens. */
const EXIT_CODES = { 'bench-recover-0': 0, 'bench-recover-3': 3, 'bench-recover-4': 4 } as const;
type RecoverMachine = keyof typeof EXIT_CODES;

export const RECOVERY_BENCH_MACHINES = {
  // No CPU, ~1 MB each (as bench-hold in scale.ts): wait on a FIFO, then exit with a known code.
  'bench-recover-0': { exec: ['/bin/sh', '-c', `read line < ${DOWN_GATE}; exit 0`] },
  'bench-recover-3': { exec: ['/bin/sh', '-c', `read line < ${DOWN_GATE}; exit 3`] },
  'bench-recover-4': { exec: ['/bin/sh', '-c', `read line < ${UP_GATE}; exit 4`] },
};

const CLIENTS = 16;
/** Polling period of /readyz while the runner starts. */
const POLL_MS = 5;

interface Full {
  taskId: string;
  state: string;
  exitCode: number | null;
}

export interface RecoveryStage {
  tasks: number;
  /** Released while the runner was down. */
  endedWhileDown: number;
  /** The new main process's start (systemd's ExecMainStartTimestamp) → /readyz 200. */
  processStartToReadyMs: number;
  /** → /readyz 200 and every record right (checked once ready; polled again if not yet). */
  processStartToAllRightMs: number;
  /** The SIGKILL → every record right: downMs, then the restart. */
  killToAllRightMs: number;
  /** The SIGKILL → the bench asking systemd to start the runner: the bench's own work while it is down (release, wait, bare readings). */
  downMs: number;
  /** The bench asking systemd to start the runner → /readyz 200. */
  startRequestToReadyMs: number;
  recordsRight: number;
  wrong: string[];
  /** CPU seconds the new runner used until ready (its whole start: Node, modules, store, recovery). */
  runnerCpuSecondsToReady: number;
  /** CPU seconds systemd (PID 1) and dbus-daemon used from the start request until ready. */
  systemdCpuSeconds: number;
  dbusCpuSeconds: number;
  bare: {
    /** ListUnitsByPatterns, then the InvocationID of each running unit and a snapshot of each ended one. */
    readingMs: number;
    /** ListUnitsByPatterns, then a whole snapshot (GetUnit + 11 Gets) of every unit: recovery before issue 17. */
    everySnapshotMs: number;
  };
  /** After the measurement, the rest released: all recorded with their code, no unit left. */
  afterRelease: { allRight: boolean; unitsLeft: number };
}

export async function benchRecovery(
  runner: RunnerService,
  systemd: PrivateSystemd,
  log: (line: string) => void,
  sizes = [0, 10, 100, 1000],
): Promise<{ stages: RecoveryStage[] }> {
  mkdirSync(`${systemd.root}${GATE_DIR}`, { recursive: true });
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
  const bus = await SystemdClient.connect(() => false);
  try {
    const stages: RecoveryStage[] = [];
    for (const size of sizes) {
      const stage = await runStage(runner, systemd, bus, size);
      log(
        `recovery, ${size} running (${stage.endedWhileDown} ended while down): ready ${stage.processStartToReadyMs} ms after the process start, ` +
          `all ${stage.recordsRight}/${size} right after ${stage.processStartToAllRightMs} ms (${stage.killToAllRightMs} ms from the SIGKILL); ` +
          `runner CPU to ready ${stage.runnerCpuSecondsToReady} s; bare reading ${stage.bare.readingMs} ms ` +
          `(a snapshot of every unit: ${stage.bare.everySnapshotMs} ms)`,
      );
      stages.push(stage);
    }
    return { stages };
  } finally {
    bus.close();
  }
}

async function runStage(runner: RunnerService, systemd: PrivateSystemd, bus: SystemdClient, size: number): Promise<RecoveryStage> {
  const api = client(runner.baseUrl);
  makeGate(systemd, DOWN_GATE);
  makeGate(systemd, UP_GATE);
  const endingWhileDown = Math.floor(size / 10);
  const machines: RecoverMachine[] = Array.from({ length: size }, (_, i) =>
    i < endingWhileDown ? (i % 2 === 0 ? 'bench-recover-0' : 'bench-recover-3') : 'bench-recover-4',
  );
  const tasks = new Map<string, RecoverMachine>();
  await inParallel(machines, CLIENTS, async (machine) => {
    const reply = await api.post<Full>('/v1/tasks', { machine, parameters: null });
    if (reply.status !== 201 || reply.body.state !== 'running')
      throw new Error(`start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
    tasks.set(reply.body.taskId, machine);
  });
  const downUnits = [...tasks].filter(([, machine]) => machine !== 'bench-recover-4').map(([id]) => unitNameOf(id));

  const killedAt = monotonicMs();
  await runner.kill();
  await untilEnded(bus, downUnits, () => openGate(systemd, DOWN_GATE));
  const bare = {
    readingMs: await timed(() => readAsRecovery(bus)),
    everySnapshotMs: await timed(() => readEverySnapshot(bus)),
  };

  const dbusPid = await mainPid(systemd, 'dbus.service');
  const systemdCpuBefore = cpuSeconds(systemd, 1);
  const dbusCpuBefore = cpuSeconds(systemd, dbusPid);
  const requestedAt = monotonicMs();
  const started = runner.start();
  started.catch(() => {});
  const readyAt = await untilReady(runner.baseUrl);
  const pid = await mainPid(systemd, runner.unit);
  const runnerCpu = cpuSeconds(systemd, pid);
  const systemdCpu = cpuSeconds(systemd, 1) - systemdCpuBefore;
  const dbusCpu = cpuSeconds(systemd, dbusPid) - dbusCpuBefore;
  // CLOCK_MONOTONIC, as monotonicMs(): the same clock in every pid namespace.
  const shown = await systemd.show(runner.unit, ['ExecMainStartTimestampMonotonic']);
  const processStartMs = Number(shown['ExecMainStartTimestampMonotonic']) / 1000;
  if (!(processStartMs > 0)) throw new Error(`${runner.unit} has no main process start time`);
  let checked = await check(api, tasks);
  const deadline = monotonicMs() + 30_000;
  while (checked.wrong.length > 0 && monotonicMs() < deadline) {
    await sleep(POLL_MS);
    checked = await check(api, tasks);
  }
  await started;

  const afterRelease = await untilAllEnded(api, bus, tasks, () => openGate(systemd, UP_GATE));
  return {
    tasks: size,
    endedWhileDown: endingWhileDown,
    processStartToReadyMs: round(readyAt - processStartMs),
    processStartToAllRightMs: round(checked.at - processStartMs),
    killToAllRightMs: round(checked.at - killedAt),
    downMs: round(requestedAt - killedAt),
    startRequestToReadyMs: round(readyAt - requestedAt),
    recordsRight: size - checked.wrong.length,
    wrong: checked.wrong.slice(0, 10),
    runnerCpuSecondsToReady: round(runnerCpu, 2),
    systemdCpuSeconds: round(systemdCpu, 2),
    dbusCpuSeconds: round(dbusCpu, 2),
    bare: { readingMs: round(bare.readingMs), everySnapshotMs: round(bare.everySnapshotMs) },
    afterRelease,
  };
}

/** What recovery reads: the listing, then per running unit its invocation, per ended unit a snapshot. */
async function readAsRecovery(bus: SystemdClient): Promise<void> {
  const units = await bus.listUnits([TASK_UNIT_GLOB]);
  await Promise.all(
    units.map((unit) =>
      unit.activeState === 'active' && unit.subState === 'running' ? bus.getInvocationId(unit.name) : bus.getUnit(unit.name),
    ),
  );
}

async function readEverySnapshot(bus: SystemdClient): Promise<void> {
  const units = await bus.listUnits([TASK_UNIT_GLOB]);
  await Promise.all(units.map((unit) => bus.getUnit(unit.name)));
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const began = monotonicMs();
  await work();
  return monotonicMs() - began;
}

/** Opens the gate (again: a task may not have reached its read yet) until every one of `units` has ended. */
async function untilEnded(bus: SystemdClient, units: string[], open: () => void): Promise<void> {
  const waiting = new Set(units);
  const deadline = monotonicMs() + 60_000;
  while (waiting.size > 0) {
    open();
    for (const unit of await bus.listUnits([TASK_UNIT_GLOB])) {
      if ((unit.activeState === 'active' && unit.subState === 'exited') || unit.activeState === 'failed') waiting.delete(unit.name);
    }
    if (waiting.size === 0) return;
    if (monotonicMs() > deadline) throw new Error(`${waiting.size} tasks released while the runner was down did not end`);
    await sleep(20);
  }
}

/** monotonicMs() of the first /readyz 200. */
async function untilReady(baseUrl: string): Promise<number> {
  const deadline = monotonicMs() + 120_000;
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/readyz`);
      await response.arrayBuffer();
      if (response.status === 200) return monotonicMs();
    } catch {
      // not listening yet
    }
    if (monotonicMs() > deadline) throw new Error('the runner did not become ready');
    await sleep(POLL_MS);
  }
}

/** CLOCK_MONOTONIC in ms, the clock of systemd's *TimestampMonotonic properties. */
function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** Every task's record against what it must be now: the ended ones exited with their code, the others running. */
async function check(api: Api, tasks: Map<string, RecoverMachine>): Promise<{ wrong: string[]; at: number }> {
  const all = new Map((await api.getAll<Full>('/v1/tasks?view=full&limit=1000')).map((task) => [task.taskId, task]));
  const at = monotonicMs();
  const wrong: string[] = [];
  for (const [id, machine] of tasks) {
    const task = all.get(id);
    const right =
      machine === 'bench-recover-4' ? task?.state === 'running' : task?.state === 'exited' && task.exitCode === EXIT_CODES[machine];
    if (!right) wrong.push(`${id} (${machine}): ${JSON.stringify(task)}`);
  }
  return { wrong, at };
}

async function untilAllEnded(
  api: Api,
  bus: SystemdClient,
  tasks: Map<string, RecoverMachine>,
  open: () => void,
): Promise<{ allRight: boolean; unitsLeft: number }> {
  const deadline = monotonicMs() + 120_000;
  for (;;) {
    open();
    const all = new Map((await api.getAll<Full>('/v1/tasks?view=full&limit=1000')).map((task) => [task.taskId, task]));
    const ended = [...tasks.keys()].every((id) => ['exited', 'lost'].includes(all.get(id)?.state ?? ''));
    if (ended || monotonicMs() > deadline) {
      const allRight = [...tasks].every(([id, machine]) => all.get(id)?.exitCode === EXIT_CODES[machine]);
      // Collection follows each end: give it a moment before counting what is left.
      let unitsLeft = (await bus.listUnits([TASK_UNIT_GLOB])).length;
      for (let i = 0; i < 100 && unitsLeft > 0; i++) {
        await sleep(50);
        unitsLeft = (await bus.listUnits([TASK_UNIT_GLOB])).length;
      }
      return { allRight, unitsLeft };
    }
    await sleep(100);
  }
}

function makeGate(systemd: PrivateSystemd, gate: string): void {
  const path = `${systemd.root}${gate}`;
  rmSync(path, { force: true });
  execFileSync('mkfifo', ['-m', '0644', path]);
}

/** Every task blocked reading the FIFO sees end-of-file once a writer opens and closes it. */
function openGate(systemd: PrivateSystemd, gate: string): void {
  let fd: number;
  try {
    fd = openSync(`${systemd.root}${gate}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (error) {
    // No task reads it (now): nothing to release.
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') return;
    throw error;
  }
  closeSync(fd);
}
