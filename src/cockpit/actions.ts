/** Stop (a second stop kills, as the API does) and delete, each behind Cockpit's confirmation. */
import type { Task } from './api-types.js';
import { confirmAction } from './dialogs.js';
import type { RunnerClient } from './runner-client.js';

/** A stop asked for already (or under way): the next one kills, as the API does. */
const kills = (task: Task) => task.stopRequested || task.state === 'stopping';

export const stopLabel = (task: Task) => (kills(task) ? 'Kill' : 'Stop');

export function confirmStop(runner: RunnerClient, task: Task): Promise<boolean> {
  const kill = kills(task);
  return confirmAction({
    title: kill ? `Kill task ${task.taskId}?` : `Stop task ${task.taskId}?`,
    body: kill
      ? 'It was asked to stop already: every process of the task gets SIGKILL now, without its cleanup.'
      : "The task gets SIGTERM and its machine's grace period to clean up, then SIGKILL.",
    action: kill ? 'Kill' : 'Stop',
    danger: true,
    run: () => runner.post(`/v1/tasks/${task.taskId}/stop`),
  });
}

export function confirmDelete(runner: RunnerClient, task: Task): Promise<boolean> {
  return confirmAction({
    title: `Delete task ${task.taskId}?`,
    body:
      task.state === 'exited' || task.state === 'lost'
        ? 'Its record and its working directory go; its output stays in the journal.'
        : 'It is stopped first; then its record and its working directory go. Its output stays in the journal.',
    action: 'Delete',
    danger: true,
    run: () => runner.delete(`/v1/tasks/${task.taskId}`),
  });
}
