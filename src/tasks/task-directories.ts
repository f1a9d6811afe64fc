/**
 * Where a task's working directory is: systemd's StateDirectory= `tessia-tasks/<id>` under
 * /var/lib. With DynamicUser= (the default) systemd keeps it in /var/lib/private (root's alone)
 * behind a symlink of the same name; a machine with a fixed user has it in place.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TASK_ID_PATTERN } from './unit-names.js';

/** Relative to /var/lib, as StateDirectory= takes it. */
export const TASK_DIRECTORIES = 'tessia-tasks';
const STATE_ROOT = '/var/lib';

export function stateDirectoryOf(taskId: string): string {
  if (!TASK_ID_PATTERN.test(taskId)) throw new Error(`not a task id: ${JSON.stringify(taskId)}`);
  return `${TASK_DIRECTORIES}/${taskId}`;
}

/**
 * Removes a finished task's directory, in this process: for a runner with root's power (the tests,
 * `npm start`). fs.rm does not follow symlinks, and no process of the task is left to race it.
 */
export async function removeTaskDirectory(taskId: string): Promise<void> {
  const relative = stateDirectoryOf(taskId);
  await rm(join(STATE_ROOT, 'private', relative), { recursive: true, force: true });
  await rm(join(STATE_ROOT, relative), { recursive: true, force: true });
}
