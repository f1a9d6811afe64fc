import express, { Router } from 'express';
import { z } from 'zod';
import type { TaskService } from '../tasks/service.js';
import type { TaskLogs } from '../tasks/logs.js';
import { logsRouter, type LogRouteOptions } from './logs-route.js';
import { parseRequest } from './validation.js';
import { briefView, fullView } from './views.js';

export const NewTaskBody = z.strictObject({
  machine: z.string().min(1).max(64),
  parameters: z.unknown().refine((value) => value !== undefined, 'required'),
});

const ListQuery = z.strictObject({
  /** brief: the tessia v1 items {taskId, state}; full: every field. */
  view: z.enum(['brief', 'full']).default('brief'),
});

export function tasksRouter(tasks: TaskService, logs: TaskLogs, logOptions: LogRouteOptions): Router {
  const router = Router();
  // Any content type: `curl -d '{…}'` sends form encoding, and tessia clients never relied on it.
  const jsonBody = express.json({ type: () => true, limit: '1mb', strict: false });

  router.post('/', jsonBody, async (request, response) => {
    const body = parseRequest(NewTaskBody, request.body === undefined ? {} : request.body, 'task');
    const task = await tasks.create({ machine: body.machine, parameters: body.parameters });
    response.status(201).location(`${request.baseUrl}/${task.taskId}`).json(fullView(task));
  });

  router.get('/', (request, response) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    const view = query.view === 'full' ? fullView : briefView;
    response.json(tasks.list().map(view));
  });

  router.get('/:taskId', (request, response) => {
    response.json(fullView(tasks.get(request.params.taskId)));
  });

  router.use('/:taskId/logs', logsRouter(logs, logOptions));

  router.post('/:taskId/stop', async (request, response) => {
    response.json(fullView(await tasks.stop(request.params.taskId)));
  });

  router.delete('/:taskId', async (request, response) => {
    await tasks.delete(request.params.taskId);
    response.json({ success: true });
  });

  return router;
}
