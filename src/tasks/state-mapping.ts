import { ExitCode, TaskState } from './model.js';

/** What systemd says about a task unit: the Unit and Service properties that decide its state. */
export interface UnitStatus {
  activeState: string;
  subState: string;
  /** Service Result: success, exit-code, signal, core-dump, timeout, oom-kill, watchdog, resources, … */
  result: string;
  /** ExecMainCode: CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3); 0 while it runs. */
  execMainCode: number;
  execMainStatus: number;
}

export type MappedStatus =
  | { state: typeof TaskState.created | typeof TaskState.running | typeof TaskState.stopping }
  | { state: typeof TaskState.exited; exitCode: number; detail: string };

/** siginfo's si_code of a child that exited (systemd's ExecMainCode), as opposed to killed or dumped. */
export const CLD_EXITED = 1;

/**
 * systemd → tessia, for units of Type=exec with RemainAfterExit=yes: `active/running` runs,
 * `active/exited` has ended (kept for us), `failed` and `inactive` have ended.
 */
export function mapUnitStatus(status: UnitStatus, stopRequested: boolean): MappedStatus {
  switch (status.activeState) {
    case 'activating':
      return { state: TaskState.created };
    case 'active':
    case 'reloading':
      if (status.subState === 'exited') return finished(status, stopRequested);
      return { state: TaskState.running };
    case 'deactivating':
      return { state: TaskState.stopping };
    case 'inactive':
    case 'failed':
      return finished(status, stopRequested);
    default:
      return { state: TaskState.running };
  }
}

function finished(status: UnitStatus, stopRequested: boolean): MappedStatus {
  const done = (exitCode: number, detail: string): MappedStatus => ({ state: TaskState.exited, exitCode, detail });
  if (stopRequested) return done(ExitCode.canceled, 'stopped on request');
  switch (status.result) {
    case 'success':
    case 'exit-code':
      if (status.execMainCode === CLD_EXITED) {
        return done(status.execMainStatus, `exited with status ${status.execMainStatus}`);
      }
      return done(ExitCode.undetermined, `ended with result ${status.result} but no exit status`);
    case 'timeout':
      return done(ExitCode.timeout, 'runtime limit reached');
    case 'signal':
    case 'core-dump':
      return done(ExitCode.exception, `killed by signal ${status.execMainStatus}`);
    case 'oom-kill':
      return done(ExitCode.exception, 'killed by the out-of-memory killer (memory limit)');
    case 'watchdog':
      return done(ExitCode.exception, 'watchdog timeout');
    default:
      return done(ExitCode.undetermined, `unit ended with result ${status.result || 'unknown'}`);
  }
}
