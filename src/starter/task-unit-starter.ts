/**
 * "Start task T of machine M": the unit is built here, from the config's machine and the task id,
 * and started with its parameters as its stdin. The privileged starter runs this for the runner;
 * a runner allowed to start units itself (root, `npm start`) runs it in its own process.
 */
import type { MachineRegistry } from '../machines/registry.js';
import type { SystemdClient } from '../systemd/client.js';
import type { TaskStartRequest, TaskStarter } from '../tasks/task-starter.js';
import { unitNameOf } from '../tasks/unit-names.js';
import { groupId, userIds } from '../system-accounts.js';
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
    await refuseRoot(machine.name, machine.config.sandbox);
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
 * The config refuses `user: root` and `group: root`; other names for UID 0 or GID 0 (a second
 * root user, a user whose primary group is root) are caught here, by the part that is root.
 */
async function refuseRoot(machine: string, sandbox: MachineConfig['sandbox']): Promise<void> {
  if (sandbox.allowRoot || sandbox.user === null) return;
  const user = await userIds(sandbox.user);
  const gid = sandbox.group === null ? user?.gid : await groupId(sandbox.group);
  const why = user?.uid === 0 ? `${sandbox.user}, UID 0` : gid === 0 ? `group ${sandbox.group ?? `of ${sandbox.user}`}, GID 0` : undefined;
  if (why === undefined) return;
  throw new StartRefused(
    STARTER_ERRORS.rootUser,
    `machine ${machine} runs as ${why}: its tasks would have root's rights; set sandbox.allowRoot: true if that is meant`,
  );
}
