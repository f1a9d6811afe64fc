/**
 * Task ids and the names of their units, in one place. The unit namespace of tasks is exactly
 * `tessia-task-<8 hex>.service`: the runner's own `tessia-task-runner.service` (and anything else
 * starting with the prefix) is not a task unit.
 */
export const TASK_ID_PATTERN = /^[0-9a-f]{8}$/;
const TASK_UNIT_PATTERN = /^tessia-task-([0-9a-f]{8})\.service$/;
/** For systemd's ListUnitsByPatterns (fnmatch): task units only. */
export const TASK_UNIT_GLOB = 'tessia-task-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].service';

export function unitNameOf(taskId: string): string {
  if (!TASK_ID_PATTERN.test(taskId)) throw new Error(`not a task id: ${JSON.stringify(taskId)}`);
  return `tessia-task-${taskId}.service`;
}

/** The task id of a task unit; null for any other unit. */
export function taskIdOf(unit: string): string | null {
  return TASK_UNIT_PATTERN.exec(unit)?.[1] ?? null;
}

export function isTaskUnit(unit: string): boolean {
  return TASK_UNIT_PATTERN.test(unit);
}

/** Tasks' working directories, relative to /var/lib as StateDirectory= takes them: one per task. */
export const TASK_STATE_DIRECTORY = 'tessia-tasks';

export function stateDirectoryOf(taskId: string): string {
  if (!TASK_ID_PATTERN.test(taskId)) throw new Error(`not a task id: ${JSON.stringify(taskId)}`);
  return `${TASK_STATE_DIRECTORY}/${taskId}`;
}

/**
 * A machine's check of a request's parameters runs in a unit of its own, `tessia-check-<16 hex>.service`,
 * before any task exists: not a task unit (tracking and recovery never see it).
 */
export const CHECK_ID_PATTERN = /^[0-9a-f]{16}$/;
const CHECK_UNIT_PREFIX = 'tessia-check-';
const CHECK_UNIT_PATTERN = new RegExp(`^${CHECK_UNIT_PREFIX}[0-9a-f]{16}\\.service$`);
/** For ListUnitsByPatterns: check units only. */
export const CHECK_UNIT_GLOB = `${CHECK_UNIT_PREFIX}${'[0-9a-f]'.repeat(16)}.service`;

export function checkUnitNameOf(checkId: string): string {
  if (!CHECK_ID_PATTERN.test(checkId)) throw new Error(`not a check id: ${JSON.stringify(checkId)}`);
  return `${CHECK_UNIT_PREFIX}${checkId}.service`;
}

export function isCheckUnit(unit: string): boolean {
  return CHECK_UNIT_PATTERN.test(unit);
}

/** The units the runner (or its starter) may have systemd start: tasks and checks, nothing else. */
export function mayStartUnit(unit: string): boolean {
  return isTaskUnit(unit) || isCheckUnit(unit);
}
