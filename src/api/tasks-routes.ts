import express, { Router } from 'express';
import { z } from 'zod';
import { TaskError } from '../tasks/errors.js';
import type { TaskService } from '../tasks/service.js';
import { briefView, fullView } from './views.js';

export const NewTaskBody = z.strictObject({
  machine: z.string().min(1).max(64),
  parameters: z.unknown().refine((value) => value !== undefined, 'required'),
});

const ListQuery = z.strictObject({
  /** brief: the tessia v1 items {taskId, state}; full: every field. */
  view: z.enum(['brief', 'full']).default('brief'),
});

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    return key ? `${key}: ${issue.message}` : issue.message;
  });
  throw new TaskError('INVALID_REQUEST', `invalid ${what}: ${problems.join('; ')}`);
}

export function tasksRouter(tasks: TaskService): Router {
  const router = Router();
  // Any content type: `curl -d '{…}'` sends form encoding, and tessia clients never relied on it.
  const jsonBody = express.json({ type: () => true, limit: '1mb', strict: false });

  router.post('/', jsonBody, async (request, response) => {
    const body = parse(NewTaskBody, request.body === undefined ? {} : request.body, 'task');
    const task = await tasks.create({ machine: body.machine, parameters: body.parameters });
    response.status(201).location(`${request.baseUrl}/${task.taskId}`).json(fullView(task));
  });

  router.get('/', (request, response) => {
    const query = parse(ListQuery, request.query, 'query');
    const view = query.view === 'full' ? fullView : briefView;
    response.json(tasks.list().map(view));
  });

  router.get('/:taskId', (request, response) => {
    response.json(fullView(tasks.get(request.params.taskId)));
  });

  router.post('/:taskId/stop', async (request, response) => {
    response.json(fullView(await tasks.stop(request.params.taskId)));
  });

  router.delete('/:taskId', async (request, response) => {
    await tasks.delete(request.params.taskId);
    response.json({ success: true });
  });

  return router;
}
