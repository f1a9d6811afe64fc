import { stateDirectoryOf } from '../tasks/unit-names.js';
import { fileURLToPath } from 'node:url';
import type { MachineConfig } from '../config/schema.js';
import type { CheckUnitSpec, SandboxedUnitSpec, TaskUnitSpec } from '../systemd/unit-spec.js';
import { EchoSyntaxError, parseEchoScript } from './echo/language.js';

/** The executables of the built-in machines, next to this file once compiled. */
const BUILTIN_PROGRAMS = {
  echo: fileURLToPath(new URL('./echo/main.js', import.meta.url)),
} as const;

/**
 * The host of tessia-mesh's Python machines (host.py beside this file, copied by the build): it runs
 * a class's run(task) in a task's unit, or its validate(task) in a check's (docs/machines.md).
 */
const TESSIA_HOST = fileURLToPath(new URL('./tessia/host.py', import.meta.url));

/** A built-in machine's own check of its parameters, run in the runner before anything starts. */
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

export interface CheckUnitContext {
  checkId: string;
  unitName: string;
  slice: string;
  /** The parameters' file (ParameterHandoff): the check's stdin. */
  parametersFile: string;
  /** Where the check's stderr goes: its reason, read once it has ended. */
  reasonFile: string;
}

/** How a machine runs: built into the runner, an executable, or a tessia-mesh Python class. */
export const MACHINE_KINDS = ['builtin', 'exec', 'tessia'] as const;
export type MachineKind = (typeof MACHINE_KINDS)[number];

export class Machine {
  constructor(
    readonly name: string,
    readonly config: MachineConfig,
  ) {}

  get kind(): MachineKind {
    if (this.config.builtin !== undefined) return 'builtin';
    return this.config.exec !== undefined ? 'exec' : 'tessia';
  }

  /** The built-in machines' check, in this process; other machines' run in units (checkArgv). */
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
    const { limits } = this.config;
    return {
      ...this.sandboxed(context.unitName, context.slice, context.parametersFile),
      description: `tessia task ${context.taskId} (${this.name})`,
      execStart: this.argv(),
      logExtraFields: [`TESSIA_TASK_ID=${context.taskId}`, `TESSIA_MACHINE=${this.name}`],
      environment: { TESSIA_TASK_ID: context.taskId, TESSIA_MACHINE: this.name },
      syslogIdentifier: `tessia-${this.name}`,
      stopGraceSec: limits.stopGraceSec,
      runtimeMaxSec: limits.runtimeMaxSec,
      stateDirectory: stateDirectoryOf(context.taskId),
    };
  }

  /** The command that checks a request's parameters before a start; null: nothing to run (builtin). */
  checkArgv(): string[] | null {
    const { exec, check, tessia } = this.config;
    if (exec !== undefined) return check ?? null;
    if (tessia !== undefined) return this.tessiaHost('check', tessia);
    return null;
  }

  checkUnitSpec(context: CheckUnitContext): CheckUnitSpec {
    const argv = this.checkArgv();
    if (argv === null) throw new Error(`machine ${this.name} has no check`);
    return {
      ...this.sandboxed(context.unitName, context.slice, context.parametersFile),
      // A check reads the parameters, nothing else: hostile ones cannot make it reach a network
      // (no request forgery from the check) or write outside its private /tmp.
      privateNetwork: true,
      readWritePaths: [],
      description: `tessia check of parameters for machine ${this.name}`,
      execStart: argv,
      environment: { TESSIA_MACHINE: this.name },
      syslogIdentifier: `tessia-${this.name}-check`,
      timeoutSec: this.config.limits.checkTimeoutSec,
      standardErrorFile: context.reasonFile,
    };
  }

  private sandboxed(
    unitName: string,
    slice: string,
    parametersFile: string,
  ): Omit<SandboxedUnitSpec, 'description' | 'execStart' | 'environment' | 'syslogIdentifier'> {
    const { limits, sandbox } = this.config;
    return {
      unitName,
      slice,
      standardInputFile: parametersFile,
      memoryMaxBytes: limits.memoryMax,
      cpuQuotaPercent: limits.cpuQuotaPercent,
      tasksMax: limits.tasksMax,
      user: sandbox.user,
      group: sandbox.group,
      privateNetwork: sandbox.privateNetwork,
      allowLoopback: sandbox.allowLoopback,
      readWritePaths: sandbox.readWritePaths,
    };
  }

  private argv(): string[] {
    const { builtin, exec, tessia } = this.config;
    if (builtin !== undefined) return [process.execPath, BUILTIN_PROGRAMS[builtin]];
    if (tessia !== undefined) return this.tessiaHost('run', tessia);
    return exec ?? [];
  }

  /** -I: no PYTHON* variables, no user site, not the host's own directory on the path; -B: no .pyc writes. */
  private tessiaHost(mode: 'run' | 'check', tessia: NonNullable<MachineConfig['tessia']>): string[] {
    return [
      tessia.python,
      '-I',
      '-B',
      TESSIA_HOST,
      mode,
      '--class',
      tessia.class,
      ...tessia.pythonPath.flatMap((path) => ['--path', path]),
    ];
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

  /** Every machine, in the config's order. */
  list(): Machine[] {
    return [...this.machines.values()];
  }
}
