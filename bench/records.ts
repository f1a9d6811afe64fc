/**
 * A task history written straight into a runner's store, with the store's own code, while the
 * runner is stopped: 100 000 tasks run one by one would take 35 minutes at the ~47 starts a second
 * two cores allow. Each record is what a task the runner ran leaves behind — created, running,
 * then exited (its exit code, result, usage) or lost — with the event of each step.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ExitCode, TaskState, type TaskUsage } from '../src/tasks/model.js';
import { TaskStore, type TaskPatch } from '../src/tasks/store.js';
import { isoFromMicros } from '../src/tasks/time.js';
import { unitNameOf } from '../src/tasks/unit-names.js';
import { round } from './stats.js';

/** How the written tasks ended, out of 20: mostly success, some failures, stops and losses. */
const ENDINGS: readonly TaskPatch[] = [
  ...Array.from({ length: 15 }, () => ({ state: TaskState.exited, exitCode: 0, result: 'success' })),
  { state: TaskState.exited, exitCode: 1, result: 'exit-code' },
  { state: TaskState.exited, exitCode: 3, result: 'exit-code' },
  { state: TaskState.exited, exitCode: ExitCode.canceled, result: 'signal', detail: 'stopped on request' },
  { state: TaskState.exited, exitCode: ExitCode.timeout, result: 'timeout', detail: 'runtime limit reached' },
  { state: TaskState.lost, exitCode: ExitCode.undetermined, result: null, detail: 'the unit was gone when the runner came back' },
];

export interface RecordsWritten {
  tasks: number;
  events: number;
  seconds: number;
}

/**
 * Writes `count` finished tasks of `machines` (taken in turn) into the store in `stateDir` (a path
 * this process can reach: the private system's through /proc/PID/root), the oldest `spanHours` ago,
 * one a second or closer, in creation order. The runner must not be running.
 */
export function writeFinishedTasks(stateDir: string, count: number, machines: readonly string[], spanHours = 24): RecordsWritten {
  const began = performance.now();
  const store = new TaskStore(stateDir);
  const events = store.lastEventId();
  const stepMicros = BigInt(Math.floor((spanHours * 3600e6) / Math.max(count, 1)));
  let at = BigInt(Date.now() - spanHours * 3600e3) * 1000n;
  const ids = new Set<string>();
  try {
    for (let i = 0; i < count; i++) {
      let taskId = randomBytes(4).toString('hex');
      while (ids.has(taskId) || store.find(taskId)) taskId = randomBytes(4).toString('hex');
      ids.add(taskId);
      const machine = machines[i % machines.length] as string;
      const createdAt = isoFromMicros(at);
      const startedAt = isoFromMicros(at + 30_000n);
      const finishedAt = isoFromMicros(at + 30_000n + BigInt(i % 97) * 10_000n);
      store.insert({ taskId, machine, unit: unitNameOf(taskId), createdAt });
      store.transition(taskId, { state: TaskState.running, startedAt, invocationId: randomBytes(16).toString('hex') }, false);
      store.transition(taskId, { ...(ENDINGS[i % ENDINGS.length] as TaskPatch), finishedAt, usage: usageOf(i, finishedAt) }, false);
      at += stepMicros;
    }
    return { tasks: count, events: store.lastEventId() - events, seconds: round((performance.now() - began) / 1000, 2) };
  } finally {
    store.close();
  }
}

function usageOf(i: number, sampledAt: string): TaskUsage {
  return {
    cpuNsec: 1_000_000 + (i % 1000) * 37_000,
    memoryBytes: 0,
    memoryPeakBytes: 900_000 + (i % 500) * 4096,
    ioReadBytes: (i % 7) * 4096,
    ioWriteBytes: 0,
    tasks: 0,
    sampledAt,
  };
}
