/**
 * "Start task T of machine M": the unit is built here, from the config's machine and the task id,
 * and started with its parameters as its stdin. The privileged starter runs this for the runner;
 * a runner allowed to start units itself (root, `npm start`) runs it in its own process.
 */
import type { MachineRegistry } from '../machines/registry.js';
import type { SystemdClient } from '../systemd/client.js';
import type { TaskStartRequest, TaskStarter } from '../tasks/task-starter.js';
import { unitNameOf } from '../tasks/unit-names.js';
import { groupId, groupIdsOf, userIds } from '../system-accounts.js';
import type { MachineConfig } from '../config/schema.js';
import type { ParameterHandoff } from './parameter-handoff.js';
import { STARTER_ERRORS } from './protocol.js';

export interface TaskUnitSettings {
  machines: MachineRegistry;
  slice: string;
  maxParameterBytes: number;
}

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
    const { machines, slice, maxParameterBytes } = this.settings;
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
    const unitName = unitNameOf(request.taskId);
    const spec = machine.unitSpec({
      taskId: request.taskId,
      unitName,
      machineName: machine.name,
      slice,
      parametersFile: this.handoff.prepare(request.taskId, request.parameters),
    });
    try {
      return await this.systemd.startTransientUnit(spec);
    } finally {
      this.handoff.release(request.taskId);
    }
  }
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
