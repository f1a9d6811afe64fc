/**
 * "Start task T of machine M": the unit is built here, from the config's machine and the task id,
 * and started with its parameters as its stdin. The privileged starter runs this for the runner;
 * a runner allowed to start units itself (root, `npm start`) runs it in its own process.
 */
import type { MachineRegistry } from '../machines/registry.js';
import type { SystemdClient } from '../systemd/client.js';
import type { TaskStartRequest, TaskStarter } from '../tasks/task-starter.js';
import { unitNameOf } from '../tasks/unit-names.js';
import { userId } from '../system-accounts.js';
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
    const user = machine.config.sandbox.user;
    // The config refuses `user: root`; another name for UID 0 is caught here, by the part that is root.
    if (user !== null && !machine.config.sandbox.allowRoot && (await userId(user)) === 0) {
      throw new StartRefused(
        STARTER_ERRORS.rootUser,
        `machine ${machine.name} runs as ${user}, UID 0: its tasks would be root; set sandbox.allowRoot: true if that is meant`,
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
