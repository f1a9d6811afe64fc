import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExitCode, TaskState } from '../../src/tasks/model.js';
import { mapUnitStatus, type UnitStatus } from '../../src/tasks/state-mapping.js';

const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;

interface Row {
  activeState: string;
  subState: string;
  result: string;
  execMainCode: number;
  execMainStatus: number;
  stopRequested: boolean;
  state: TaskState;
  /** Only for state exited. */
  exitCode?: number;
  /** Matched against the detail of an exited task, when given. */
  detail?: RegExp;
}

function describeRow(row: Row): string {
  const unit = `${row.activeState}/${row.subState} result=${row.result || '(empty)'} code=${row.execMainCode} status=${row.execMainStatus}`;
  const stop = row.stopRequested ? ' after a stop request' : '';
  const expected = row.exitCode === undefined ? row.state : `${row.state} with exit code ${row.exitCode}`;
  return `maps a unit ${unit}${stop} to ${expected}.`;
}

function check(row: Row): void {
  const status: UnitStatus = {
    activeState: row.activeState,
    subState: row.subState,
    result: row.result,
    execMainCode: row.execMainCode,
    execMainStatus: row.execMainStatus,
  };
  const mapped = mapUnitStatus(status, row.stopRequested);
  assert.equal(mapped.state, row.state);
  if (row.state === TaskState.exited) {
    assert.ok('exitCode' in mapped, 'an exited task has an exit code');
    assert.equal(mapped.exitCode, row.exitCode);
    assert.equal(typeof mapped.detail, 'string');
    assert.notEqual(mapped.detail, '');
    if (row.detail) assert.match(mapped.detail, row.detail);
  } else {
    assert.deepEqual(mapped, { state: row.state });
  }
}

const running = { result: 'success', execMainCode: 0, execMainStatus: 0 };

const rows: Row[] = [
  // Not finished.
  { activeState: 'activating', subState: 'start', ...running, stopRequested: false, state: TaskState.created },
  { activeState: 'activating', subState: 'start-pre', ...running, stopRequested: true, state: TaskState.created },
  { activeState: 'active', subState: 'running', ...running, stopRequested: false, state: TaskState.running },
  { activeState: 'active', subState: 'running', ...running, stopRequested: true, state: TaskState.running },
  { activeState: 'reloading', subState: 'reload', ...running, stopRequested: false, state: TaskState.running },
  { activeState: 'reloading', subState: 'running', ...running, stopRequested: false, state: TaskState.running },
  { activeState: 'deactivating', subState: 'stop-sigterm', ...running, stopRequested: false, state: TaskState.stopping },
  { activeState: 'deactivating', subState: 'stop-sigkill', ...running, stopRequested: true, state: TaskState.stopping },
  { activeState: 'maintenance', subState: 'whatever', ...running, stopRequested: false, state: TaskState.running },

  // Ended on its own: the exit status of the main process.
  {
    activeState: 'active',
    subState: 'exited',
    result: 'success',
    execMainCode: CLD_EXITED,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.success,
    detail: /^exited with status 0$/,
  },
  {
    activeState: 'reloading',
    subState: 'exited',
    result: 'success',
    execMainCode: CLD_EXITED,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: 0,
  },
  {
    activeState: 'inactive',
    subState: 'dead',
    result: 'success',
    execMainCode: CLD_EXITED,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: 0,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'exit-code',
    execMainCode: CLD_EXITED,
    execMainStatus: 7,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: 7,
    detail: /^exited with status 7$/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'exit-code',
    execMainCode: CLD_EXITED,
    execMainStatus: 255,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: 255,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'timeout',
    execMainCode: CLD_KILLED,
    execMainStatus: 15,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.timeout,
    detail: /runtime limit/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'signal',
    execMainCode: CLD_KILLED,
    execMainStatus: 6,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.exception,
    detail: /^killed by signal 6$/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'core-dump',
    execMainCode: CLD_DUMPED,
    execMainStatus: 11,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.exception,
    detail: /^killed by signal 11$/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'oom-kill',
    execMainCode: CLD_KILLED,
    execMainStatus: 9,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.exception,
    detail: /out-of-memory/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'watchdog',
    execMainCode: CLD_KILLED,
    execMainStatus: 6,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.exception,
    detail: /watchdog/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'resources',
    execMainCode: 0,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.undetermined,
    detail: /^unit ended with result resources$/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: '',
    execMainCode: 0,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.undetermined,
    detail: /^unit ended with result unknown$/,
  },
  {
    activeState: 'active',
    subState: 'exited',
    result: 'success',
    execMainCode: 0,
    execMainStatus: 0,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.undetermined,
    detail: /^ended with result success but no exit status$/,
  },
  {
    activeState: 'failed',
    subState: 'failed',
    result: 'exit-code',
    execMainCode: CLD_KILLED,
    execMainStatus: 9,
    stopRequested: false,
    state: TaskState.exited,
    exitCode: ExitCode.undetermined,
    detail: /^ended with result exit-code but no exit status$/,
  },
];

// After a stop request every end is a cancel, whatever systemd's result.
const stopResults: { result: string; execMainCode: number; execMainStatus: number }[] = [
  { result: 'success', execMainCode: CLD_EXITED, execMainStatus: 0 },
  { result: 'exit-code', execMainCode: CLD_EXITED, execMainStatus: 143 },
  { result: 'timeout', execMainCode: CLD_KILLED, execMainStatus: 9 },
  { result: 'signal', execMainCode: CLD_KILLED, execMainStatus: 15 },
  { result: 'core-dump', execMainCode: CLD_DUMPED, execMainStatus: 6 },
  { result: 'oom-kill', execMainCode: CLD_KILLED, execMainStatus: 9 },
  { result: 'resources', execMainCode: 0, execMainStatus: 0 },
];
for (const [activeState, subState] of [
  ['inactive', 'dead'],
  ['failed', 'failed'],
  ['active', 'exited'],
] as const) {
  for (const result of stopResults) {
    rows.push({
      activeState,
      subState,
      ...result,
      stopRequested: true,
      state: TaskState.exited,
      exitCode: ExitCode.canceled,
      detail: /^stopped on request$/,
    });
  }
}

describe('mapUnitStatus', () => {
  for (const row of rows) {
    it(describeRow(row), () => check(row));
  }

  it('uses the tessia exit codes 0, -1, -2, -3 and -99.', () => {
    assert.deepEqual(ExitCode, { success: 0, canceled: -1, timeout: -2, exception: -3, undetermined: -99 });
  });
});
