/**
 * The task lifecycle: validate, record, start the unit, follow systemd's state changes, stop,
 * forget, collect. systemd is the truth for units that exist; the store for units that are gone.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EventEmitter, once } from 'node:events';
import type { Logger } from 'pino';
import type { Machine, MachineRegistry } from '../machines/registry.js';
import { InvalidParametersError } from '../machines/registry.js';
import { DISCONNECTED, SystemdError, type SystemdClient, type UnitSnapshot } from '../systemd/client.js';
import { TaskError } from './errors.js';
import { ExitCode, TaskState, isFinished, type TaskRecord } from './model.js';
import { mapUnitStatus, type MappedStatus, type UnitStatus } from './state-mapping.js';
import type { ParameterHandoff } from './parameter-handoff.js';
import type { TaskBrief, TaskPatch, TaskStore } from './store.js';
import { isoFromMicros, nowIso } from './time.js';

export const UNIT_PREFIX = 'tessia-task-';
export const TASK_ID_PATTERN = /^[0-9a-f]{8}$/;
const SIGKILL = 9;

export interface TaskServiceOptions {
  slice: string;
  /** How long a stop request waits for the task to end before answering. */
  stopWaitMs: number;
  /** Tasks created/running/stopping at once; one more is refused (TOO_MANY_TASKS). */
  maxActiveTasks: number;
  /** Largest `parameters` as JSON. */
  maxParameterBytes: number;
  /** Hands each task its parameters as its stdin. */
  handoff: ParameterHandoff;
  /** Told about starts (with the D-Bus round trip), failed starts and stop requests, for metrics. */
  observer?: TaskObserver;
  /** Tests only: die by SIGKILL at this point of a start, to prove recovery. */
  faultPoint?: FaultPoint;
}

export interface TaskObserver {
  started(seconds: number): void;
  startFailed(): void;
  stopRequested(): void;
}

export const FAULT_POINTS = ['after-record', 'after-start'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

export interface NewTask {
  machine: string;
  parameters: unknown;
}

const LEGAL_NEXT: Record<TaskState, readonly TaskState[]> = {
  created: [TaskState.running, TaskState.stopping, TaskState.exited, TaskState.lost],
  running: [TaskState.stopping, TaskState.exited, TaskState.lost],
  stopping: [TaskState.exited, TaskState.lost],
  exited: [],
  lost: [],
};

export class TaskService extends EventEmitter<{ changed: [TaskRecord] }> {
  /** Properties seen in PropertiesChanged signals, for units collected before we could read them. */
  private readonly lastSignalled = new Map<string, Partial<UnitStatus>>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly refreshPending = new Set<string>();
  private closed = false;

  constructor(
    private readonly store: TaskStore,
    private readonly systemd: SystemdClient,
    private machines: MachineRegistry,
    private readonly options: TaskServiceOptions,
    private readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    systemd.on('unitChanged', ({ unitName, changed }) => {
      this.rememberSignalled(unitName, changed);
      this.scheduleRefresh(unitName);
    });
    // Changes while the bus was gone were never signalled: read every active task again.
    systemd.on('reconnected', () => void this.refreshActive());
  }

  /** Follows an active task's unit again (after a restart of the runner or of the bus). */
  async reattach(task: TaskRecord): Promise<void> {
    this.systemd.watch(task.unit);
    await this.refresh(task.unit);
  }

  async refreshActive(): Promise<void> {
    await Promise.all(this.store.listActive().map((task) => this.reattach(task)));
  }

  /**
   * Records a unit of ours that has no task (the store was lost or replaced): it is taken in as a
   * task, so it can be seen, stopped and collected like any other.
   */
  async adopt(snapshot: UnitSnapshot, taskId: string): Promise<TaskRecord> {
    const machine = snapshot.environment.find((entry) => entry.startsWith('TESSIA_MACHINE='))?.slice(15) ?? 'unknown';
    const started = snapshot.activeEnterTimestamp > 0n ? isoFromMicros(snapshot.activeEnterTimestamp) : nowIso();
    this.store.insert({ taskId, machine, unit: snapshot.unitName, createdAt: started });
    this.store.update(taskId, { detail: 'adopted at start-up: systemd had the unit, the store had no record of it' });
    await this.reattach(this.mustFind(taskId));
    return this.mustFind(taskId);
  }

  /** A task whose result is recorded but whose unit systemd still keeps (the runner died between). */
  async collectFinished(task: TaskRecord): Promise<void> {
    await this.collect(task.taskId, task.unit);
  }

  async create(request: NewTask): Promise<TaskRecord> {
    this.assertOpen();
    const machine = this.machine(request.machine);
    const size = Buffer.byteLength(JSON.stringify(request.parameters ?? null));
    if (size > this.options.maxParameterBytes) {
      throw new TaskError('PARAMETERS_TOO_LARGE', `parameters are ${size} bytes as JSON, more than the ${this.options.maxParameterBytes} allowed`);
    }
    if (this.store.countActive() >= this.options.maxActiveTasks) {
      throw new TaskError('TOO_MANY_TASKS', `${this.options.maxActiveTasks} tasks are active already; try again when some have ended`);
    }
    try {
      machine.validate(request.parameters);
    } catch (error) {
      if (error instanceof InvalidParametersError) throw new TaskError('INVALID_PARAMETERS', error.message, { cause: error });
      throw error;
    }
    const taskId = this.newTaskId();
    const unit = unitNameOf(taskId);
    // Durable before the unit exists: a crash from here on leaves a record recovery can settle.
    this.store.insert({ taskId, machine: machine.name, unit, createdAt: nowIso() });
    this.fault('after-record');
    this.systemd.watch(unit);
    let jobResult: string;
    const began = performance.now();
    try {
      const spec = machine.unitSpec({
        taskId,
        unitName: unit,
        machineName: machine.name,
        slice: this.options.slice,
        parametersFile: this.options.handoff.prepare(taskId, request.parameters),
      });
      jobResult = await this.systemd.startTransientUnit(spec).finally(() => this.options.handoff.release(taskId));
    } catch (error) {
      this.options.observer?.startFailed();
      if (error instanceof SystemdError && error.dbusName === DISCONNECTED) {
        // Whether systemd started it is unknown: the record stays "created" until the bus is back.
        throw new TaskError('SYSTEMD_UNAVAILABLE', `task ${taskId}: ${error.message}; its state is settled once systemd answers again`, { cause: error });
      }
      this.finish(taskId, { state: TaskState.exited, exitCode: ExitCode.exception, detail: `start failed: ${messageOf(error)}` });
      this.systemd.unwatch(unit);
      throw new TaskError('START_FAILED', `task ${taskId} could not be started: ${messageOf(error)}`, { cause: error });
    }
    if (jobResult !== 'done') {
      this.options.observer?.startFailed();
      const snapshot = await this.systemd.getUnit(unit).catch(() => null);
      const why = snapshot ? `${snapshot.result}, status ${snapshot.execMainStatus}` : 'unit gone';
      this.finish(taskId, {
        state: TaskState.exited,
        exitCode: ExitCode.exception,
        detail: `start job ${jobResult} (${why})`,
      });
      await this.collect(taskId, unit);
      throw new TaskError('START_FAILED', `task ${taskId} failed to start: start job ${jobResult} (${why})`);
    }
    this.options.observer?.started((performance.now() - began) / 1000);
    this.fault('after-start');
    await this.refresh(unit);
    return this.mustFind(taskId);
  }

  get(taskId: string): TaskRecord {
    const task = TASK_ID_PATTERN.test(taskId) ? this.store.get(taskId) : undefined;
    if (!task) throw new TaskError('TASK_NOT_FOUND', `task ${JSON.stringify(taskId)} not found`);
    return task;
  }

  list(): TaskRecord[] {
    return this.store.list();
  }

  listBrief(): TaskBrief[] {
    return this.store.listBrief();
  }

  /** First stop: SIGTERM and the machine's grace period. A second one: SIGKILL to every process now. */
  async stop(taskId: string): Promise<TaskRecord> {
    this.assertOpen();
    const task = this.get(taskId);
    if (isFinished(task)) return task;
    await this.requestStop(task);
    await this.waitUntilFinished(taskId, this.options.stopWaitMs);
    return this.mustFind(taskId);
  }

  /** Forgets a task; one still running is stopped first and removed once its unit has ended. */
  async delete(taskId: string): Promise<void> {
    this.assertOpen();
    const task = this.get(taskId);
    if (isFinished(task)) {
      this.store.remove(taskId);
      return;
    }
    this.store.forget(taskId);
    await this.requestStop(task);
  }

  replaceMachines(machines: MachineRegistry): void {
    this.machines = machines;
  }

  close(): void {
    this.closed = true;
    this.removeAllListeners();
  }

  private async requestStop(task: TaskRecord): Promise<void> {
    try {
      if (!(task.stopRequested && task.state === TaskState.stopping)) {
        // Intent first: the end that follows is a cancel (-1) even if the runner dies right here.
        if (!task.stopRequested) this.store.update(task.taskId, { stopRequested: true });
        this.options.observer?.stopRequested();
        await this.systemd.stopUnit(task.unit);
        this.log.info({ taskId: task.taskId }, 'stop requested: SIGTERM, then SIGKILL after the grace period');
      } else {
        await this.systemd.killUnit(task.unit, SIGKILL);
        this.log.info({ taskId: task.taskId }, 'second stop: SIGKILL to every process of the task');
      }
    } catch (error) {
      if (error instanceof SystemdError && error.dbusName === 'org.freedesktop.systemd1.NoSuchUnit') {
        await this.refresh(task.unit);
        return;
      }
      throw new TaskError('SYSTEMD_UNAVAILABLE', `stopping task ${task.taskId}: ${messageOf(error)}`, { cause: error });
    }
  }

  private async waitUntilFinished(taskId: string, timeoutMs: number): Promise<void> {
    const current = this.store.find(taskId);
    if (!current || isFinished(current.task) || timeoutMs <= 0) return;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      for (;;) {
        const [task] = (await once(this, 'changed', { signal: controller.signal })) as [TaskRecord];
        if (task.taskId === taskId && isFinished(task)) return;
      }
    } catch {
      // Timed out: the caller reports whatever state the task has now.
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A unit's change comes as a burst of signals (its Unit and Service interfaces, several
   * properties each): they are taken in together, then read once.
   */
  private scheduleRefresh(unit: string): void {
    if (this.refreshing.has(unit)) {
      this.dirty.add(unit);
      return;
    }
    if (this.refreshPending.has(unit)) return;
    this.refreshPending.add(unit);
    setImmediate(() => {
      this.refreshPending.delete(unit);
      void this.refresh(unit);
    });
  }

  /** Reads the unit from systemd and moves its task to the state that follows. One at a time per unit. */
  private refresh(unit: string): Promise<void> {
    const running = this.refreshing.get(unit);
    if (running) {
      this.dirty.add(unit);
      return running;
    }
    const work = (async () => {
      do {
        this.dirty.delete(unit);
        try {
          await this.refreshOnce(unit);
        } catch (error) {
          this.log.warn({ unit, err: error }, 'could not read the state of a task unit');
        }
      } while (this.dirty.has(unit) && !this.closed);
    })().finally(() => this.refreshing.delete(unit));
    this.refreshing.set(unit, work);
    return work;
  }

  private async refreshOnce(unit: string): Promise<void> {
    const taskId = taskIdOf(unit);
    const found = taskId === null ? undefined : this.store.find(taskId);
    if (!found || taskId === null) return;
    const { task } = found;
    if (isFinished(task)) return;
    const snapshot = await this.systemd.getUnit(unit);
    const current = snapshot && snapshot.loadState === 'loaded' && belongsTo(snapshot, task) ? snapshot : null;
    if (current === null) {
      this.applyGone(task);
    } else {
      this.apply(task, current);
    }
    const after = this.store.find(taskId);
    if (after && isFinished(after.task)) await this.collect(taskId, unit, current);
  }

  private apply(task: TaskRecord, snapshot: UnitSnapshot): void {
    const mapped = mapUnitStatus(snapshot, task.stopRequested);
    const patch: TaskPatch = {};
    if (task.invocationId === null && snapshot.invocationId) patch.invocationId = snapshot.invocationId;
    if (task.startedAt === null && snapshot.activeEnterTimestamp > 0n) {
      patch.startedAt = isoFromMicros(snapshot.activeEnterTimestamp);
    }
    if (mapped.state === TaskState.exited) {
      const end = snapshot.execMainExitTimestamp || snapshot.inactiveEnterTimestamp;
      this.transition(task, { ...patch, ...this.finishedPatch(mapped), result: snapshot.result || null }, end);
    } else {
      this.transition(task, { ...patch, state: mapped.state });
    }
  }

  /** The unit is not loaded any more: trust what its last signals said, else the task is lost. */
  private applyGone(task: TaskRecord): void {
    const signalled = this.lastSignalled.get(task.unit);
    if (signalled?.activeState !== undefined) {
      const mapped = mapUnitStatus(
        { activeState: '', subState: '', result: '', execMainCode: 0, execMainStatus: 0, ...signalled },
        task.stopRequested,
      );
      if (mapped.state === TaskState.exited) {
        this.transition(task, { ...this.finishedPatch(mapped), result: signalled.result || null });
        return;
      }
    }
    if (task.stopRequested) {
      this.transition(task, { state: TaskState.exited, exitCode: ExitCode.canceled, detail: 'stopped on request' });
      return;
    }
    this.transition(task, {
      state: TaskState.lost,
      exitCode: ExitCode.undetermined,
      detail: 'the unit is gone and systemd kept no result',
    });
  }

  private finishedPatch(mapped: Extract<MappedStatus, { state: 'exited' }>): TaskPatch {
    return { state: TaskState.exited, exitCode: mapped.exitCode, detail: mapped.detail };
  }

  private finish(taskId: string, patch: TaskPatch): void {
    this.transition(this.mustFind(taskId), patch);
  }

  /** The only place a task changes state: checks the move is legal, writes it, tells listeners. */
  private transition(task: TaskRecord, patch: TaskPatch, endMicros = 0n): void {
    const next = patch.state ?? task.state;
    if (next !== task.state && !LEGAL_NEXT[task.state].includes(next)) {
      this.log.warn({ taskId: task.taskId, from: task.state, to: next }, 'ignored an illegal state change');
      return;
    }
    if ((next === TaskState.exited || next === TaskState.lost) && patch.finishedAt === undefined) {
      patch.finishedAt = endMicros > 0n ? isoFromMicros(endMicros) : nowIso();
    }
    this.store.update(task.taskId, patch);
    const updated = this.mustFind(task.taskId);
    if (updated.state !== task.state) {
      this.log.info({ taskId: task.taskId, state: updated.state, exitCode: updated.exitCode }, `task ${updated.state}`);
    }
    this.emit('changed', updated);
  }

  /** The result is recorded: let systemd garbage-collect the unit, and drop a forgotten task's row. */
  /** `known`: the unit as just read, when there is one (saves reading it again). */
  private async collect(taskId: string, unit: string, known?: UnitSnapshot | null): Promise<void> {
    try {
      await this.systemd.collectUnit(unit, known ?? undefined);
    } catch (error) {
      this.log.warn({ taskId, err: error }, 'could not collect a finished task unit');
    }
    this.systemd.unwatch(unit);
    this.lastSignalled.delete(unit);
    if (this.store.find(taskId)?.forgotten) this.store.remove(taskId);
  }

  private rememberSignalled(unit: string, changed: Record<string, unknown>): void {
    const known = this.lastSignalled.get(unit) ?? {};
    if (typeof changed['ActiveState'] === 'string') known.activeState = changed['ActiveState'];
    if (typeof changed['SubState'] === 'string') known.subState = changed['SubState'];
    if (typeof changed['Result'] === 'string') known.result = changed['Result'];
    if (typeof changed['ExecMainCode'] === 'number') known.execMainCode = changed['ExecMainCode'];
    if (typeof changed['ExecMainStatus'] === 'number') known.execMainStatus = changed['ExecMainStatus'];
    this.lastSignalled.set(unit, known);
  }

  private fault(point: FaultPoint): void {
    if (this.options.faultPoint !== point) return;
    this.log.fatal({ point }, 'fault injection: dying by SIGKILL');
    process.kill(process.pid, 'SIGKILL');
  }

  private machine(name: string): Machine {
    const machine = this.machines.get(name);
    if (!machine) throw new TaskError('UNKNOWN_MACHINE', `unknown machine ${JSON.stringify(name)}`);
    return machine;
  }

  private newTaskId(): string {
    for (;;) {
      const taskId = randomBytes(4).toString('hex');
      if (!this.store.find(taskId)) return taskId;
    }
  }

  private mustFind(taskId: string): TaskRecord {
    const found = this.store.find(taskId);
    if (!found) throw new Error(`task ${taskId} vanished from the store`);
    return found.task;
  }

  private assertOpen(): void {
    if (this.closed) throw new TaskError('SHUTTING_DOWN');
  }
}

export function unitNameOf(taskId: string): string {
  return `${UNIT_PREFIX}${taskId}.service`;
}

export function taskIdOf(unit: string): string | null {
  const match = /^tessia-task-([0-9a-f]{8})\.service$/.exec(unit);
  return match?.[1] ?? null;
}

/** A unit of the same name from another run (after a restart of systemd, say) is not this task's. */
function belongsTo(snapshot: UnitSnapshot, task: TaskRecord): boolean {
  return task.invocationId === null || snapshot.invocationId === '' || snapshot.invocationId === task.invocationId;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
