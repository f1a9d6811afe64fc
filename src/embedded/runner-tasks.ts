/**
 * Tasks of a runner in the private systemd, from outside: start one, wait for a state, a journal line
 * or the unit's collection, stop and collect what is left. Seen through the API and from systemd's side.
 */
import { TASK_LOG_NAMESPACE } from '../package-layout.js';
import type { Api } from './api-client.js';
import { eventually } from './eventually.js';
import type { RunnerService } from './runner-service.js';

export async function startTask(api: Api, machine: string, parameters: unknown) {
  const reply = await api.post('/v1/tasks', { machine, parameters });
  if (reply.status !== 201) throw new Error(`start failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as { taskId: string; state: string; unit: string; invocationId: string };
}

/** Stops the given tasks, waits until they have ended and their units are collected. */
export async function cleanUp(runner: RunnerService, api: Api, taskIds: Iterable<string>): Promise<void> {
  for (const taskId of taskIds) {
    const reply = await api.post(`/v1/tasks/${taskId}/stop`);
    if (reply.status === 404) continue;
    await waitForState(api, taskId, ['exited', 'lost']);
  }
  for (const taskId of taskIds) await waitForCollected(runner, `tessia-task-${taskId}.service`);
}

export function waitForState(api: Api, taskId: string, states: string[], timeoutMs = 20_000) {
  return eventually(
    `task ${taskId} reaching ${states.join('|')}`,
    async () => (await api.get(`/v1/tasks/${taskId}`)).body,
    (task: any) => states.includes(task?.state),
    timeoutMs,
  );
}

/** The unit is gone from systemd: collected, with no process left. */
export function waitForCollected(runner: RunnerService, unit: string, timeoutMs = 20_000) {
  return eventually(
    `${unit} being collected`,
    async () => (await runner.systemd.show(unit, ['LoadState', 'ActiveState']))['LoadState'],
    (loadState) => loadState === 'not-found',
    timeoutMs,
  );
}

/** `journalctl --namespace=tessia` (the tasks' journal) and these arguments, as an admin would read a task's output. */
export function taskJournalctl(...args: string[]): string[] {
  return ['journalctl', `--namespace=${TASK_LOG_NAMESPACE}`, '--no-pager', ...args];
}

/** The task's own output, from the tasks' journal namespace. */
export async function journalOf(runner: RunnerService, taskId: string): Promise<string[]> {
  const result = await runner.systemd.run(taskJournalctl('-o', 'cat', `TESSIA_TASK_ID=${taskId}`));
  return result.stdout.split('\n').filter((line) => line !== '');
}

/** Entries keep arriving after the unit has exited (journald lags): wait for a line. */
export function waitForJournalLine(runner: RunnerService, taskId: string, line: string, timeoutMs = 20_000) {
  return eventually(
    `"${line}" in the journal of ${taskId}`,
    () => journalOf(runner, taskId),
    (lines) => lines.includes(line),
    timeoutMs,
  );
}

export async function unitsOfTasks(runner: RunnerService): Promise<string[]> {
  const result = await runner.systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-task-*');
  return result.stdout
    .split('\n')
    .map((line) => line.split(/\s+/)[0] ?? '')
    .filter((unit) => unit !== '');
}
