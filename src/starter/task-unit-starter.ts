/**
 * "Start task T of machine M": the unit is built here, from the config's machine and the task id,
 * and started with its parameters as its stdin. The privileged starter runs this for the runner;
 * a runner allowed to start units itself (root, `npm start`) runs it in its own process.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { bounded, lastLine, withoutParameters } from '../machines/check-reason.js';
import type { Machine, MachineRegistry } from '../machines/registry.js';
import type { SystemdClient, UnitSnapshot } from '../systemd/client.js';
import { CHECK_INVALID_STATUSES } from '../systemd/unit-spec.js';
import { CLD_EXITED } from '../tasks/state-mapping.js';
import type { CheckRequest, CheckVerdict, TaskStartRequest, TaskStarter } from '../tasks/task-starter.js';
import { CHECK_UNIT_GLOB, checkUnitNameOf, unitNameOf } from '../tasks/unit-names.js';
import { groupId, groupIdsOf, userIds } from '../system-accounts.js';
import type { MachineConfig } from '../config/schema.js';
import type { ParameterHandoff } from './parameter-handoff.js';
import { takeReasonFile } from './reason-file.js';
import { STARTER_ERRORS, type UnitAction } from './protocol.js';

export interface TaskUnitSettings {
  machines: MachineRegistry;
  slice: string;
  maxParameterBytes: number;
}

const { SIGKILL } = constants.signals;
/** A check's unit gets SIGKILL 2 s after its stop (CHECK_STOP_GRACE_SEC): this is ample. */
const SWEEP_STOP_WAIT_MS = 10_000;

/** A refusal before anything reached systemd, with its name on the starter's protocol. */
export class StartRefused extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = 'StartRefused';
  }
}

export class TaskUnitStarter implements TaskStarter {
  constructor(
    private readonly systemd: SystemdClient,
    private readonly handoff: ParameterHandoff,
    private settings: TaskUnitSettings,
  ) {}

  /** New machines and limits apply to the next start; starts under way keep what they began with. */
  replaceSettings(settings: TaskUnitSettings): void {
    this.settings = settings;
    this.rootChecks.clear();
  }

  /** Each machine's user looked up once per version of the settings (a few processes, not a few a start). */
  private readonly rootChecks = new Map<string, Promise<string | undefined>>();

  private rootRightsOf(machine: string, sandbox: MachineConfig['sandbox']): Promise<string | undefined> {
    let check = this.rootChecks.get(machine);
    if (!check) {
      check = rootRights(sandbox);
      // A failed lookup (getent missing, a timeout) is not kept: the next start asks again.
      check.catch(() => this.rootChecks.delete(machine));
      this.rootChecks.set(machine, check);
    }
    return check;
  }

  /** Holds nothing of its own: the systemd client and the handoff directory are its owner's. */
  close(): void {
    // Nothing to release.
  }

  async start(request: TaskStartRequest): Promise<string> {
    const machine = await this.admitted(request);
    const unitName = unitNameOf(request.taskId);
    const spec = machine.unitSpec({
      taskId: request.taskId,
      unitName,
      machineName: machine.name,
      slice: this.settings.slice,
      parametersFile: this.handoff.prepare(request.taskId, request.parameters),
    });
    try {
      return await this.systemd.startTransientUnit(spec);
    } finally {
      this.handoff.release(request.taskId);
    }
  }

  /**
   * Stops, kills (SIGKILL to every process) or resets the unit of task `taskId`: what polkit's rule
   * lets the runner do itself, to task units only (the name comes from the id, never from a request).
   */
  async controlUnit(action: UnitAction, taskId: string): Promise<void> {
    const unitName = unitNameOf(taskId);
    if (action === 'stop') await this.systemd.stopUnit(unitName);
    else if (action === 'kill') await this.systemd.killUnit(unitName, SIGKILL);
    else await this.systemd.resetFailedUnit(unitName);
  }

  /**
   * Runs the machine's check in a oneshot unit with the machine's sandbox: its start job ends when
   * the check does. Then the unit is collected and its reason file read and removed.
   */
  async check(request: CheckRequest): Promise<CheckVerdict> {
    const machine = await this.admitted(request);
    if (machine.checkArgv() === null) return { outcome: 'valid' };
    const checkId = randomBytes(8).toString('hex');
    const handoffName = `check-${checkId}`;
    const unitName = checkUnitNameOf(checkId);
    const reasonFile = this.handoff.siblingPath(`${handoffName}.reason`);
    let collected = false;
    try {
      const spec = machine.checkUnitSpec({
        checkId,
        unitName,
        slice: this.settings.slice,
        parametersFile: this.handoff.prepare(handoffName, request.parameters),
        reasonFile,
      });
      const result = await this.systemd.startCheckUnit(spec);
      const snapshot = await this.systemd.getUnit(unitName);
      // The check's end (its children's too), then its stderr, then the verdict.
      collected = await this.stopAndCollect(unitName);
      const said = lastLine(takeReasonFile(reasonFile));
      // Scrubbing costs (up to a few hundred ms for the largest parameters): only a reason that goes out.
      if (said === '' || verdictOf(result, snapshot, '').outcome === 'valid') return verdictOf(result, snapshot, '');
      return verdictOf(result, snapshot, withoutParameters(bounded(said), request.parameters));
    } finally {
      this.handoff.release(handoffName);
      takeReasonFile(reasonFile);
      // Whatever went wrong above (systemd lost, a check that would not stop): the sweep at the
      // starter's next start collects what this could not.
      if (!collected) void this.stopAndCollect(unitName).catch(() => undefined);
    }
  }

  /**
   * Stops and collects check units left by a starter that died during a check: their verdicts have
   * no one to go to. Tasks' units are the runner's (recovery); checks' are the starter's alone.
   */
  async sweepChecks(log: Logger): Promise<void> {
    let units: { name: string }[];
    try {
      units = await this.systemd.listUnits([CHECK_UNIT_GLOB]);
    } catch (error) {
      log.warn({ err: error }, 'could not list leftover check units');
      return;
    }
    // All at once: each may take its stop grace period.
    await Promise.all(
      units.map(async (unit) => {
        try {
          if (await this.stopAndCollect(unit.name)) log.info({ unit: unit.name }, 'collected the unit of a check no one waits for');
          else log.warn({ unit: unit.name }, 'a leftover check unit did not stop in time: left to the next start of the starter');
        } catch (error) {
          log.warn({ unit: unit.name, err: error }, 'could not collect a leftover check unit');
        }
      }),
    );
  }

  /**
   * Waits for every process of the unit to be gone (a check's children may outlive its main
   * process), stopping it if need be, and collects it; false when it did not end in time.
   */
  private async stopAndCollect(unitName: string): Promise<boolean> {
    const snapshot = await this.systemd.getUnit(unitName);
    if (snapshot === null || snapshot.activeState === 'inactive') return true;
    if (snapshot.activeState !== 'failed') {
      const stopped = await Promise.race([this.systemd.stopUnitAndWait(unitName), sleep(SWEEP_STOP_WAIT_MS, 'not in time')]);
      if (stopped === 'not in time') return false;
    }
    // Stopped cleanly, it is gone; killed (SIGKILL after its grace), it is failed: reset.
    return this.systemd.collectUnit(unitName);
  }

  /** The request's machine, once its size and the machine's user pass (StartRefused if not). */
  private async admitted(request: CheckRequest): Promise<Machine> {
    const { machines, maxParameterBytes } = this.settings;
    const machine = machines.get(request.machine);
    if (!machine) throw new StartRefused(STARTER_ERRORS.unknownMachine, `unknown machine ${JSON.stringify(request.machine)}`);
    const size = Buffer.byteLength(JSON.stringify(request.parameters ?? null));
    if (size > maxParameterBytes) {
      throw new StartRefused(STARTER_ERRORS.tooLarge, `parameters are ${size} bytes as JSON, more than the ${maxParameterBytes} allowed`);
    }
    const why = await this.rootRightsOf(machine.name, machine.config.sandbox);
    if (why !== undefined) {
      throw new StartRefused(
        STARTER_ERRORS.rootUser,
        `machine ${machine.name} runs as ${why}: its tasks would have root's rights, or none known; set sandbox.allowRoot: true if that is meant`,
      );
    }
    return machine;
  }
}

/** systemd's own exit statuses when it could not run a command (systemd.exec(5), "Process Exit Codes"). */
const SYSTEMD_EXIT_STATUSES: Record<number, string> = {
  200: 'CHDIR',
  203: 'EXEC: the program is missing or not executable',
  216: 'GROUP',
  217: 'USER',
};

/**
 * The verdict of a check unit from its start job's result and the unit (kept after a verdict
 * either way by RemainAfterExit=, gone when systemd collected it): exit statuses 1–124 say
 * "invalid"; 125 and above (as env(1) and shells use them, and systemd's own 200–243) "could not check".
 */
export function verdictOf(jobResult: string, unit: UnitSnapshot | null, reason: string): CheckVerdict {
  const said = reason === '' ? '' : `: ${reason}`;
  if (jobResult === 'timeout' || unit?.result === 'timeout') return { outcome: 'timeout', reason: `the check did not end in time${said}` };
  if (unit === null) return { outcome: 'broken', reason: `the check's start job ended "${jobResult}" and its unit is gone${said}` };
  if ((unit.result === 'success' || unit.result === 'exit-code') && unit.execMainCode === CLD_EXITED) {
    const status = unit.execMainStatus;
    if (status === 0 && jobResult === 'done') return { outcome: 'valid' };
    if (status >= CHECK_INVALID_STATUSES.first && status <= CHECK_INVALID_STATUSES.last) {
      return { outcome: 'invalid', reason: reason === '' ? `rejected by the machine's check (exit status ${status})` : reason };
    }
    const systemds = SYSTEMD_EXIT_STATUSES[status];
    return { outcome: 'broken', reason: `the check could not run (exit status ${status}${systemds ? `, ${systemds}` : ''})${said}` };
  }
  if (unit.result === 'signal' || unit.result === 'core-dump') {
    return { outcome: 'broken', reason: `the check was killed by signal ${unit.execMainStatus}${said}` };
  }
  return { outcome: 'broken', reason: `the check ended with result ${unit.result || jobResult}${said}` };
}

/**
 * The config refuses `user: root` and `group: root`; other names for them — a second user with UID
 * 0, a user in a group with GID 0 (primary or supplementary), a group with GID 0 — are caught here,
 * by the part that is root. A name that does not resolve is refused too: systemd might resolve it
 * where this process cannot (a directory over the network), so nothing is known of it.
 * Returns why, or undefined when the machine's user is not root in any of these ways.
 */
async function rootRights(sandbox: MachineConfig['sandbox']): Promise<string | undefined> {
  if (sandbox.allowRoot || sandbox.user === null) return undefined;
  const user = await userIds(sandbox.user);
  if (user === undefined) return `${sandbox.user}, a user this host does not resolve`;
  if (user.uid === 0) return `${sandbox.user}, UID 0`;
  if (sandbox.group !== null) {
    const gid = await groupId(sandbox.group);
    if (gid === undefined) return `group ${sandbox.group}, a group this host does not resolve`;
    if (gid === 0) return `group ${sandbox.group}, GID 0`;
  } else if (user.gid === 0) return `group of ${sandbox.user}, GID 0`;
  if ((await groupIdsOf(sandbox.user))?.includes(0)) return `${sandbox.user}, a member of a group with GID 0`;
  return undefined;
}
