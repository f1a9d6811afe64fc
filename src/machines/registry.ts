import { stateDirectoryOf } from '../tasks/unit-names.js';
import { fileURLToPath } from 'node:url';
import type { MachineConfig } from '../config/schema.js';
import type { TaskUnitSpec } from '../systemd/unit-spec.js';
import { EchoSyntaxError, parseEchoScript } from './echo/language.js';

/** The executables of the built-in machines, next to this file once compiled. */
const BUILTIN_PROGRAMS = {
  echo: fileURLToPath(new URL('./echo/main.js', import.meta.url)),
} as const;

/** A machine's own check of its parameters, run before anything starts. */
const BUILTIN_VALIDATORS = {
  echo: (parameters: unknown) => {
    parseEchoScript(parameters);
  },
} as const;

export class InvalidParametersError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidParametersError';
  }
}

export interface TaskUnitContext {
  taskId: string;
  unitName: string;
  machineName: string;
  slice: string;
  /** The file holding the task's parameters (see ParameterHandoff): its standard input. */
  parametersFile: string;
}

export class Machine {
  constructor(
    readonly name: string,
    readonly config: MachineConfig,
  ) {}

  validate(parameters: unknown): void {
    if (this.config.builtin === undefined) return;
    try {
      BUILTIN_VALIDATORS[this.config.builtin](parameters);
    } catch (error) {
      if (error instanceof EchoSyntaxError) throw new InvalidParametersError(error.message, { cause: error });
      throw error;
    }
  }

  unitSpec(context: TaskUnitContext): TaskUnitSpec {
    const { limits, sandbox } = this.config;
    return {
      unitName: context.unitName,
      description: `tessia task ${context.taskId} (${this.name})`,
      slice: context.slice,
      execStart: this.argv(),
      logExtraFields: [`TESSIA_TASK_ID=${context.taskId}`, `TESSIA_MACHINE=${this.name}`],
      environment: { TESSIA_TASK_ID: context.taskId, TESSIA_MACHINE: this.name },
      standardInputFile: context.parametersFile,
      syslogIdentifier: `tessia-${this.name}`,
      stopGraceSec: limits.stopGraceSec,
      runtimeMaxSec: limits.runtimeMaxSec,
      memoryMaxBytes: limits.memoryMax,
      cpuQuotaPercent: limits.cpuQuotaPercent,
      tasksMax: limits.tasksMax,
      user: sandbox.user,
      group: sandbox.group,
      stateDirectory: stateDirectoryOf(context.taskId),
      privateNetwork: sandbox.privateNetwork,
      allowLoopback: sandbox.allowLoopback,
      readWritePaths: sandbox.readWritePaths,
    };
  }

  private argv(): string[] {
    if (this.config.builtin !== undefined) return [process.execPath, BUILTIN_PROGRAMS[this.config.builtin]];
    return this.config.exec ?? [];
  }
}

export class MachineRegistry {
  private readonly machines: ReadonlyMap<string, Machine>;

  constructor(configs: Record<string, MachineConfig>) {
    this.machines = new Map(Object.entries(configs).map(([name, config]) => [name, new Machine(name, config)]));
  }

  get(name: string): Machine | undefined {
    return this.machines.get(name);
  }
}
