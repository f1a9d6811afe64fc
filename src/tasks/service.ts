/**
 * The task lifecycle, as the API asks for it: validate, record, start the unit; get and list; stop;
 * forget. What happens to a task after its start is unit tracking's (tracking.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { stringify } from 'safe-stable-stringify';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import type { Machine, MachineRegistry } from '../machines/registry.js';
import { InvalidParametersError } from '../machines/registry.js';
import { DISCONNECTED, NO_SUCH_UNIT, OUTCOME_UNKNOWN, SystemdError, type JobWatch, type SystemdClient } from '../systemd/client.js';
import { TaskError } from './errors.js';
import { TaskEvents } from './events.js';
import { ExitCode, TaskState, isFinished, type FinishedTask, type TaskEvent, type TaskRecord, type TaskUsage } from './model.js';
import type { PageQuery, TaskPage, TaskStore, TaskView } from './store.js';
import { StoreUnwritableError } from './store-errors.js';
import { describeStartFailure } from '../systemd/start-failures.js';
import { CheckersBusyError, type CheckVerdict, type TaskStarter } from './task-starter.js';
import { nowIso } from './time.js';
import type { UnitTracker } from './tracking.js';
import type { TaskTransitions } from './transitions.js';
import { TASK_ID_PATTERN, unitNameOf } from './unit-names.js';

const { SIGKILL } = constants.signals;
/** How long after the starter's answer the runner waits to see the same job end on its own connection. */
const JOB_SIGNAL_WAIT_MS = 1000;
/** Beyond a check's own timeout (its unit's TimeoutStartSec=, then 2 s to SIGKILL), how long the starter's answer may take. */
const CHECK_ANSWER_MARGIN_SEC = 30;

/** Why a check could not be asked for: the starter's refusals are the client's to retry. */
function checkError(machine: Machine, error: unknown): TaskError {
  const message = `machine ${machine.name}: its check of the parameters could not be run: ${messageOf(error)}`;
  if (error instanceof CheckersBusyError) return new TaskError('TOO_MANY_CHECKS', message, { cause: error });
  if (error instanceof SystemdError && error.dbusName === DISCONNECTED)
    return new TaskError('SYSTEMD_UNAVAILABLE', message, { cause: error });
  return new TaskError('CHECK_FAILED', message, { cause: error });
}
/** A call that failed this way may or may not have reached systemd. */

export interface TaskServiceOptions {
  /** How long a stop request waits for the task to end before answering. */
  stopWaitMs: number;
  /** Tasks created/running/stopping at once; one more is refused (TOO_MANY_TASKS). */
  maxActiveTasks: number;
  /** Machines' checks under way at once; one more is refused (TOO_MANY_CHECKS). */
  maxActiveChecks: number;
  /** Largest `parameters` as JSON. */
  maxParameterBytes: number;
  /** Builds and starts each task's unit (the privileged starter, or the runner itself). */
  starter: TaskStarter;
  /** Told about starts (with the D-Bus round trip), failed starts and stop requests, for metrics. */
  observer?: TaskObserver;
  hooks?: StartHooks;
}

export interface TaskObserver {
  started(seconds: number): void;
  /** A machine's check ended with this outcome. */
  checked(outcome: CheckVerdict['outcome']): void;
  startFailed(): void;
  stopRequested(): void;
}

/** Called at each durable step of a start (and of a delete). Tests use them to crash the runner there (recovery). */
export interface StartHooks {
  /** The record is in the store; the unit does not exist yet. */
  afterRecord?(): void;
  /** systemd's start job is done; the task's state is not read yet. */
  afterStart?(): void;
  /** DELETE: the task is marked forgotten in the store; its unit is not stopped yet. */
  afterForget?(): void;
  /** An event is in the store; no subscriber has been told of it yet. */
  afterEvent?: (event: TaskEvent) => void;
}

export interface NewTask {
  machine: string;
  parameters: unknown;
  /** The client's Idempotency-Key: the same key and request again give the same task. */
  idempotencyKey?: string;
}

export interface CreatedTask {
  task: TaskRecord;
  /** The key named a task made before for the same request: that task, nothing new started. */
  replayed: boolean;
}

export class TaskService {
  private closed = false;
  /** The machine of each check under way (a request not yet a task), counted by the caps. */
  private readonly checking = new Map<symbol, string>();
  /** State changes, kept and live, for subscribers (GET /v1/events). */
  readonly events: TaskEvents;

  constructor(
    private readonly store: TaskStore,
    private readonly systemd: SystemdClient,
    private readonly tracker: UnitTracker,
    private readonly transitions: TaskTransitions,
    private machines: MachineRegistry,
    private readonly options: TaskServiceOptions,
    private readonly log: Logger,
  ) {
    this.events = new TaskEvents(store, transitions);
  }

  /**
   * Validates, records and starts a task. With an idempotency key that a visible task holds: that
   * task when the request is the same one (machine and parameters), IDEMPOTENCY_KEY_REUSED when not.
   */
  async create(request: NewTask): Promise<CreatedTask> {
    this.assertOpen();
    const idempotency = request.idempotencyKey === undefined ? undefined : { key: request.idempotencyKey, digest: requestDigest(request) };
    const earlier = this.earlierTask(idempotency);
    if (earlier) return { task: earlier, replayed: true };
    return this.createNew(request, idempotency);
  }

  /**
   * The task an Idempotency-Key started before for the same request (machine and parameters);
   * IDEMPOTENCY_KEY_REUSED when it started one for another request; undefined when it names none.
   */
  private earlierTask(idempotency: { key: string; digest: string } | undefined): TaskRecord | undefined {
    if (idempotency === undefined) return undefined;
    const earlier = this.store.findByKey(idempotency.key);
    if (!earlier) return undefined;
    if (earlier.digest !== idempotency.digest) {
      throw new TaskError(
        'IDEMPOTENCY_KEY_REUSED',
        `this Idempotency-Key started task ${earlier.task.taskId} for another request (machine or parameters differ); use a new key for a new task`,
      );
    }
    return earlier.task;
  }

  /**
   * Both caps (all tasks, this machine's). A request whose check is running counts as a task of its
   * machine: each check is a unit too, so the caps bound checks at once as they bound tasks.
   */
  private assertCapacity(machine: Machine): void {
    if (this.store.countActive() + this.checking.size >= this.options.maxActiveTasks) {
      throw new TaskError('TOO_MANY_TASKS', `${this.options.maxActiveTasks} tasks are active already; try again when some have ended`);
    }
    const machineCap = machine.config.limits.maxActive;
    const checkingOf = [...this.checking.values()].filter((name) => name === machine.name).length;
    if (machineCap !== null && this.store.countActiveOf(machine.name) + checkingOf >= machineCap) {
      throw new TaskError(
        'MACHINE_BUSY',
        `${machineCap} tasks of machine ${machine.name} are active already (its limits.maxActive); try again when one has ended`,
      );
    }
  }

  /**
   * The machine's check of the parameters, in a unit with the machine's sandbox (never in the
   * runner): its reason is the client's error when it rejects them; nothing is recorded either way.
   */
  private async check(machine: Machine, parameters: unknown): Promise<void> {
    if (this.checking.size >= this.options.maxActiveChecks) {
      throw new TaskError(
        'TOO_MANY_CHECKS',
        `${this.options.maxActiveChecks} checks of parameters are under way (limits.maxActiveChecks); try again shortly`,
      );
    }
    let verdict: CheckVerdict;
    const token = Symbol('check');
    this.checking.set(token, machine.name);
    // systemd stops the check at its timeout; this bounds the wait should the starter never answer.
    const deadlineMs = (machine.config.limits.checkTimeoutSec + CHECK_ANSWER_MARGIN_SEC) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<CheckVerdict>((resolve) => {
      timer = setTimeout(
        () => resolve({ outcome: 'timeout', reason: 'the check did not end in time (no answer from the starter)' }),
        deadlineMs,
      );
    });
    try {
      verdict = await Promise.race([this.options.starter.check({ machine: machine.name, parameters }), deadline]);
    } catch (error) {
      throw checkError(machine, error);
    } finally {
      clearTimeout(timer);
      this.checking.delete(token);
    }
    this.options.observer?.checked(verdict.outcome);
    switch (verdict.outcome) {
      case 'valid':
        return;
      case 'invalid':
        throw new TaskError('INVALID_PARAMETERS', verdict.reason);
      case 'timeout':
        throw new TaskError(
          'CHECK_TIMEOUT',
          `machine ${machine.name}: ${verdict.reason} (limits.checkTimeoutSec: ${machine.config.limits.checkTimeoutSec} s)`,
        );
      case 'broken':
        throw new TaskError('CHECK_FAILED', `machine ${machine.name}: ${verdict.reason}`);
      default: {
        const unreachable: never = verdict;
        throw new Error(`unknown verdict ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private async createNew(request: NewTask, idempotency: { key: string; digest: string } | undefined): Promise<CreatedTask> {
    let machine = this.machine(request.machine);
    const size = Buffer.byteLength(JSON.stringify(request.parameters ?? null));
    if (size > this.options.maxParameterBytes) {
      throw new TaskError(
        'PARAMETERS_TOO_LARGE',
        `parameters are ${size} bytes as JSON, more than the ${this.options.maxParameterBytes} allowed`,
      );
    }
    this.assertCapacity(machine);
    // A reload during a check may change the machine (its check, or what runs): the parameters are
    // checked again, in full, by the machine that will run them.
    for (;;) {
      try {
        machine.validate(request.parameters);
      } catch (error) {
        if (error instanceof InvalidParametersError) throw new TaskError('INVALID_PARAMETERS', error.message, { cause: error });
        throw error;
      }
      if (machine.checkArgv() === null) break;
      await this.check(machine, request.parameters);
      this.assertOpen();
      const now = this.machine(request.machine);
      const unchanged = JSON.stringify(now.config) === JSON.stringify(machine.config);
      machine = now;
      if (unchanged) break;
    }
    // The check took time: the key and the caps are read again, with the record written right after.
    const earlier = this.earlierTask(idempotency);
    // The same request with the same key, whose check ended first: its task.
    if (earlier) return { task: earlier, replayed: true };
    this.assertCapacity(machine);
    const taskId = this.newTaskId();
    const unit = unitNameOf(taskId);
    // Durable before the unit exists: a crash from here on leaves a record recovery can settle,
    // and a record the store cannot take (a full disk) starts nothing.
    try {
      this.transitions.create({ taskId, machine: machine.name, unit, createdAt: nowIso() }, idempotency);
    } catch (error) {
      if (error instanceof StoreUnwritableError) throw error.refusing('task not started');
      throw error;
    }
    this.options.hooks?.afterRecord?.();
    this.tracker.track(unit, true);
    const began = performance.now();
    // The privileged starter waits for the job on its own connection: once this one has seen the
    // job end too, the unit's signals up to then are in, and its state needs no reading back.
    const jobSeen = this.systemd.watchJobRemoved(unit);
    let jobResult: string;
    try {
      jobResult = await this.startUnit(taskId, unit, machine.name, request.parameters, jobSeen);
    } catch (error) {
      jobSeen.cancel();
      throw error;
    }
    if (jobResult !== 'done') {
      jobSeen.cancel();
      this.options.observer?.startFailed();
      const snapshot = await this.systemd.getUnit(unit).catch(() => null);
      const why = describeStartFailure(jobResult, snapshot);
      try {
        this.transitions.move(this.mustFind(taskId), { state: TaskState.exited, exitCode: ExitCode.exception, detail: why });
      } catch (error) {
        if (!(error instanceof StoreUnwritableError)) throw error;
        // Its failed unit stays (systemd keeps it) and is followed: read, recorded and collected once the store takes writes.
        this.tracker.started(unit);
        throw new TaskError(
          'START_FAILED',
          `task ${taskId} failed to start: ${why}; recorded once the store takes writes (${error.message})`,
        );
      }
      await this.tracker.collect(taskId, unit);
      throw new TaskError('START_FAILED', `task ${taskId} failed to start: ${why}`);
    }
    this.options.observer?.started((performance.now() - began) / 1000);
    this.options.hooks?.afterStart?.();
    // The job has ended: seen here already, or its signal is on its way (the starter saw it first).
    this.tracker.started(unit, (await jobSeen.ended(JOB_SIGNAL_WAIT_MS)) !== null);
    // If the store cannot take the task's new state (a full disk), the task still runs: it is
    // answered as recorded ("created") and tracking records the rest once the store takes writes.
    await this.tracker.refresh(unit);
    const now = this.mustFind(taskId);
    // A DELETE during the start job may have sent its stop before the unit existed: send it now.
    if (this.store.find(taskId)?.forgotten && !isFinished(now)) {
      await this.requestStop(now).catch((error: unknown) =>
        this.log.warn({ taskId, err: error }, 'could not stop a task deleted while it started'),
      );
    }
    return { task: now, replayed: false };
  }

  get(taskId: string): TaskRecord {
    const task = TASK_ID_PATTERN.test(taskId) ? this.store.get(taskId) : undefined;
    if (!task) throw new TaskError('TASK_NOT_FOUND', `task ${JSON.stringify(taskId)} not found`);
    return task;
  }

  /** A page of the tasks, in creation order (see TaskStore.page). */
  page<View extends TaskView>(view: View, query: PageQuery): TaskPage<View> {
    return this.store.page(view, query);
  }

  /** The brief page as JSON text, in bytes (TaskStore.briefPageJson). */
  briefPageJson(query: PageQuery): { json: Buffer; next?: number } {
    return this.store.briefPageJson(query);
  }

  /** What an active task uses now, from its cgroup; a finished task's record keeps its last figures. */
  usage(task: TaskRecord): TaskUsage | null {
    return isFinished(task) ? task.usage : this.tracker.usageNow(task.unit);
  }

  /** Resolves with the task once it has finished; undefined when `signal` aborts first. */
  whenFinished(taskId: string, signal: AbortSignal): Promise<FinishedTask | undefined> {
    return this.transitions.whenFinished(taskId, signal);
  }

  /** First stop: SIGTERM and the machine's grace period. A second one: SIGKILL to every process now. */
  async stop(taskId: string): Promise<TaskRecord> {
    this.assertOpen();
    const task = this.get(taskId);
    if (isFinished(task)) return task;
    await this.requestStop(task);
    if (this.options.stopWaitMs > 0) await this.whenFinished(taskId, AbortSignal.timeout(this.options.stopWaitMs));
    return this.mustFind(taskId);
  }

  /**
   * Forgets a task. The intent is stored first (hidden from the API from then on); a task still
   * active is then stopped (as a stop would: SIGTERM, or SIGKILL if a stop was asked for already),
   * and its row goes once its unit has ended and is collected (tracking). A delete interrupted by a
   * crash or a lost bus is finished by recovery and on reconnect (finishDeletes): stop again, then forget.
   * A DELETE again while the task is still stopping (a machine that takes its grace period) kills it,
   * as a second stop does: the task is hidden, but never out of reach.
   */
  async delete(taskId: string): Promise<TaskRecord> {
    this.assertOpen();
    const deleting = TASK_ID_PATTERN.test(taskId) ? this.store.find(taskId) : undefined;
    if (deleting?.forgotten && !isFinished(deleting.task)) {
      // SIGKILL once the stop was taken (stopping); StopUnit again if it never was (a lost bus).
      await this.requestStop({ ...deleting.task, stopRequested: true });
      return deleting.task;
    }
    const task = this.get(taskId);
    try {
      this.transitions.forget(taskId);
    } catch (error) {
      if (error instanceof StoreUnwritableError) throw error.refusing(`task ${taskId} not deleted`);
      throw error;
    }
    this.options.hooks?.afterForget?.();
    if (isFinished(task)) {
      // Its unit may still be loaded (collecting it failed): the row goes once it is not.
      await this.tracker.collect(taskId, task.unit);
      return task;
    }
    try {
      await this.requestStop(task);
    } catch (error) {
      if (!(error instanceof TaskError && error.cause instanceof SystemdError && OUTCOME_UNKNOWN.has(error.cause.dbusName ?? ''))) {
        // systemd said no: nothing is being done, so the task is the caller's to see and delete again.
        this.transitions.unforget(taskId, task.stopRequested);
        throw error;
      }
      throw new TaskError(
        'SYSTEMD_UNAVAILABLE',
        `deleting task ${taskId}: ${messageOf(error.cause)}; the delete is recorded, and the task is stopped and forgotten once systemd answers again`,
        { cause: error.cause },
      );
    }
    return task;
  }

  /** The machines new tasks may run, in the config's order. */
  listMachines(): Machine[] {
    return this.machines.list();
  }

  replaceMachines(machines: MachineRegistry): void {
    this.machines = machines;
  }

  close(): void {
    this.closed = true;
  }

  /**
   * StartTransientUnit until systemd's start job is done: the job's result ("done", "failed", …),
   * from whichever tells it first. The starter's answer is the same signal read on its connection,
   * then one more hop, at the moment the machine is busiest (the job's end): this connection's own
   * JobRemoved settles the start without it. A job seen ending here was started: the starter
   * failing after that fails nothing.
   */
  private async startUnit(taskId: string, unit: string, machine: string, parameters: unknown, jobSeen: JobWatch): Promise<string> {
    const answered = this.options.starter.start({ taskId, machine, parameters });
    try {
      const first = await Promise.race([answered, jobSeen.seen.then((result) => ({ seenHere: result }))]);
      if (typeof first === 'string') return first;
      answered.catch((error: unknown) =>
        this.log.warn({ taskId, err: error }, "the starter's answer to a start failed after its job had ended: the task runs"),
      );
      return first.seenHere;
    } catch (error) {
      this.options.observer?.startFailed();
      if (error instanceof SystemdError && error.dbusName === DISCONNECTED) {
        // Whether systemd started it is unknown: the record stays "created" until the bus is back,
        // when tracking reads it (the lifecycle no longer waits for this start job).
        this.tracker.started(unit);
        // The starter lost systemd, but this runner has it: read the unit once its start settled
        // (the bus's own return reads every unit anyway).
        if (this.systemd.connected) {
          setTimeout(
            () =>
              void this.tracker.refresh(unit).catch((error: unknown) => this.log.warn({ err: error, taskId }, 'reading the unit failed')),
            1000,
          ).unref();
        }
        throw new TaskError('SYSTEMD_UNAVAILABLE', `task ${taskId}: ${error.message}; its state is settled once systemd answers again`, {
          cause: error,
        });
      }
      try {
        this.transitions.move(this.mustFind(taskId), {
          state: TaskState.exited,
          exitCode: ExitCode.exception,
          detail: `start failed: ${messageOf(error)}`,
        });
      } catch (recording) {
        if (!(recording instanceof StoreUnwritableError)) throw recording;
        // Followed until the store takes writes: then its unit is found gone, and the task lost.
        this.tracker.started(unit);
        throw new TaskError('START_FAILED', `task ${taskId} could not be started: ${messageOf(error)}; ${recording.message}`, {
          cause: error,
        });
      }
      this.tracker.untrack(unit);
      throw new TaskError('START_FAILED', `task ${taskId} could not be started: ${messageOf(error)}`, { cause: error });
    }
  }

  private async requestStop(task: TaskRecord): Promise<void> {
    const first = !(task.stopRequested && task.state === TaskState.stopping);
    // Intent first: the end that follows is a cancel (-1) even if the runner dies right here; and a
    // stop whose intent the store cannot take (a full disk) is not sent.
    if (first && !task.stopRequested) {
      try {
        this.store.update(task.taskId, { stopRequested: true });
      } catch (error) {
        if (error instanceof StoreUnwritableError) throw error.refusing(`task ${task.taskId} not stopped`);
        throw error;
      }
    }
    try {
      if (first) {
        this.options.observer?.stopRequested();
        await this.tracker.control.stopUnit(task.unit);
        this.log.info({ taskId: task.taskId }, 'stop requested: SIGTERM, then SIGKILL after the grace period');
      } else {
        await this.tracker.control.killUnit(task.unit, SIGKILL);
        this.log.info({ taskId: task.taskId }, 'second stop: SIGKILL to every process of the task');
      }
    } catch (error) {
      if (error instanceof SystemdError && error.dbusName === NO_SUCH_UNIT) {
        await this.tracker.refresh(task.unit);
        return;
      }
      throw new TaskError('SYSTEMD_UNAVAILABLE', `stopping task ${task.taskId}: ${messageOf(error)}`, { cause: error });
    }
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

/** What identifies a request for its idempotency key: the machine and the parameters, key order aside. */
function requestDigest(request: NewTask): string {
  return createHash('sha256')
    .update(stringify({ machine: request.machine, parameters: request.parameters ?? null }) ?? '')
    .digest('hex');
}
