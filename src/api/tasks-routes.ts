import express, { Router, type Request } from 'express';
import { z } from 'zod';
import type { TaskService } from '../tasks/service.js';
import type { TaskLogs } from '../tasks/logs.js';
import { logsRouter, type LogRouteOptions } from './logs-route.js';
import { limitJsonDepth } from './body-limits.js';
import { parseRequest } from './validation.js';
import { fullView } from './views.js';

export const NewTaskBody = z.strictObject({
  machine: z.string().min(1).max(64),
  parameters: z.unknown().refine((value) => value !== undefined, 'required'),
});

export const ListQuery = z.strictObject({
  /** brief: the tessia v1 items {taskId, state}; full: every field. */
  view: z.enum(['brief', 'full']).default('brief'),
});

export interface TasksRouterOptions extends LogRouteOptions {
  maxBodyBytes: number;
  maxJsonDepth: number;
}

/** Who did what to which task, from where: one log entry per change (never the parameters). */
function audit(request: Request, action: string, taskId: string, machine?: string): void {
  request.log.info(
    { audit: action, identity: request.identity?.name, taskId, machine, source: request.socket.remoteAddress ?? 'unix' },
    `audit: ${action} ${taskId}`,
  );
}

export function tasksRouter(tasks: TaskService, logs: TaskLogs, options: TasksRouterOptions): Router {
  const router = Router();
  // Any content type: `curl -d '{…}'` sends form encoding, and tessia clients never relied on it.
  const jsonBody = express.json({ type: () => true, limit: options.maxBodyBytes, strict: false });

  router.post('/', jsonBody, limitJsonDepth(options.maxJsonDepth), async (request, response) => {
    const body = parseRequest(NewTaskBody, request.body === undefined ? {} : request.body, 'task');
    const task = await tasks.create({ machine: body.machine, parameters: body.parameters });
    audit(request, 'task.start', task.taskId, task.machine);
    response.status(201).location(`${request.baseUrl}/${task.taskId}`).json(fullView(task));
  });

  router.get('/', (request, response) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    response.json(query.view === 'full' ? tasks.list().map(fullView) : tasks.listBrief());
  });

  router.get('/:taskId', (request, response) => {
    response.json(fullView(tasks.get(request.params.taskId)));
  });

  router.use('/:taskId/logs', logsRouter(logs, options));

  router.post('/:taskId/stop', async (request, response) => {
    const task = await tasks.stop(request.params.taskId);
    audit(request, 'task.stop', task.taskId, task.machine);
    response.json(fullView(task));
  });

  router.delete('/:taskId', async (request, response) => {
    const machine = tasks.get(request.params.taskId).machine;
    await tasks.delete(request.params.taskId);
    audit(request, 'task.delete', request.params.taskId, machine);
    response.json({ success: true });
  });

  return router;
}
