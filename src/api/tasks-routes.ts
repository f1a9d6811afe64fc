import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { MACHINE_NAME } from '../config/schema.js';
import { TASK_STATES, isFinished, type TaskState } from '../tasks/model.js';
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

/**
 * Page sizes of GET /v1/tasks. The brief view is tessia's plain list: its default page is large
 * enough for every task a runner keeps in practice (10 000 took 30 ms), so tessia clients, which
 * know nothing of pages, still see them all. Every field of every task costs more: 100 a page.
 */
export const LIST_PAGE = { brief: { default: 10_000, max: 10_000 }, full: { default: 100, max: 1000 } } as const;

export const ListQuery = z
  .strictObject({
    /** brief: the tessia v1 items {taskId, state}; full: every field. */
    view: z.enum(['brief', 'full']).default('brief').meta({ description: 'brief: the tessia v1 items {taskId, state}; full: every field' }),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(LIST_PAGE.brief.max)
      .optional()
      .meta({
        description: `tasks a page, at most ${LIST_PAGE.brief.max} (brief) or ${LIST_PAGE.full.max} (full); default ${LIST_PAGE.brief.default} or ${LIST_PAGE.full.default}`,
      }),
    after: z
      .string()
      .regex(/^\d{1,15}$/, 'must be the cursor of an earlier page (from its Link: <…>; rel="next" header)')
      .transform(Number)
      .optional()
      .meta({ description: 'the cursor of the page before, as its Link header gives it (rel="next")' }),
    state: z
      .string()
      .transform((value) => value.split(','))
      .pipe(
        z
          .array(z.enum(TASK_STATES as [string, ...string[]]))
          .min(1)
          .max(TASK_STATES.length),
      )
      .optional()
      .meta({ description: `only tasks in these states, comma-separated (${TASK_STATES.join(', ')})` }),
    machine: z.string().regex(MACHINE_NAME, 'must be a machine name').optional().meta({ description: 'only tasks of this machine' }),
    order: z
      .enum(['oldest', 'newest'])
      .default('oldest')
      .meta({ description: 'oldest: in creation order (tessia v1); newest: the newest first, each page older than the one before' }),
    since: z.iso
      .datetime({ offset: true })
      .transform(toStoredTime)
      .optional()
      .meta({ description: 'only tasks created at or after this time (ISO 8601)' }),
    until: z.iso
      .datetime({ offset: true })
      .transform(toStoredTime)
      .optional()
      .meta({ description: 'only tasks created before this time (ISO 8601)' }),
  })
  .superRefine((query, context) => {
    const max = LIST_PAGE[query.view].max;
    if (query.limit !== undefined && query.limit > max) {
      context.addIssue({ code: 'custom', path: ['limit'], message: `must be at most ${max} with view=${query.view}` });
    }
  });

/** Waiting for a task to finish (GET /v1/tasks/{id}?wait=finished): at most this long per request. */
export const MAX_WAIT_SEC = 300;

export const GetQuery = z.strictObject({
  wait: z.enum(['finished']).optional().meta({ description: 'answer once the task has finished, or when timeout runs out' }),
  timeout: z.coerce
    .number()
    .min(0)
    .max(MAX_WAIT_SEC)
    .default(30)
    .meta({ description: `seconds to wait at most (default 30, at most ${MAX_WAIT_SEC}); the task as it is then` }),
});

/** The header of a POST that may be retried; keys are the client's, compared as they are. */
export const IdempotencyKeyHeader = z
  .string()
  .regex(/^[\x20-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters')
  .meta({ description: 'the same key and request again give the task the first one made' });

export interface TasksRouterOptions extends LogRouteOptions {
  maxBodyBytes: number;
  maxJsonDepth: number;
}

/** Creation times are stored as ISO 8601 UTC strings, which sort as the times do. */
function toStoredTime(value: string): string {
  return new Date(value).toISOString().replace(/Z$/, '000Z');
}

/**
 * Who did what to which task, from where: one log entry per change (never the parameters). Written
 * right after the answer is handed to the socket, in the same turn (and even if that throws), so the
 * entry does not delay an answer written at once (a compressed one is written later anyway).
 */
function audit(request: Request, action: string, taskId: string, machine?: string): void {
  request.log.info(
    { audit: action, identity: request.identity?.name, taskId, machine, source: request.socket.remoteAddress ?? 'unix' },
    `audit: ${action} ${taskId}`,
  );
}

/** This request's URL with `after` set to the cursor: every other query key kept as it was. */
function nextPageUrl(request: Request, cursor: number): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(request.query)) if (key !== 'after' && typeof value === 'string') query.set(key, value);
  query.set('after', String(cursor));
  return `${request.baseUrl}?${query.toString()}`;
}

export function tasksRouter(tasks: TaskService, logs: TaskLogs, options: TasksRouterOptions): Router {
  const router = Router();
  // Only JSON reaches here (jsonBodiesOnly refuses other bodies with 415: browsers' simple requests).
  const jsonBody = express.json({ type: 'application/json', limit: options.maxBodyBytes, strict: false });

  router.post('/', jsonBody, limitJsonDepth(options.maxJsonDepth), async (request, response) => {
    const body = parseRequest(NewTaskBody, request.body === undefined ? {} : request.body, 'task');
    const key = request.get('idempotency-key');
    const { task, replayed } = await tasks.create({
      machine: body.machine,
      parameters: body.parameters,
      ...(key === undefined ? {} : { idempotencyKey: parseRequest(IdempotencyKeyHeader, key, 'Idempotency-Key') }),
    });
    response.location(`${request.baseUrl}/${task.taskId}`);
    if (replayed) {
      response.set('Idempotent-Replayed', 'true').json(fullView(task));
      return;
    }
    try {
      response.status(201).json(fullView(task));
    } finally {
      audit(request, 'task.start', task.taskId, task.machine);
    }
  });

  // In creation order, a page at a time; the next page's URL in a Link header (RFC 8288), as the
  // brief view must stay tessia's plain array. The filters are query keys, kept in that URL.
  router.get('/', (request, response) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    const limit = query.limit ?? LIST_PAGE[query.view].default;
    const filter = {
      ...(query.state === undefined ? {} : { states: query.state as TaskState[] }),
      ...(query.machine === undefined ? {} : { machine: query.machine }),
      ...(query.since === undefined ? {} : { since: query.since }),
      ...(query.until === undefined ? {} : { until: query.until }),
    };
    const page = { ...(query.after === undefined ? {} : { after: query.after }), limit, filter, newestFirst: query.order === 'newest' };
    const linkNext = (next: number | undefined) => {
      if (next !== undefined) response.links({ next: nextPageUrl(request, next) });
    };
    if (query.view === 'full') {
      const found = tasks.page('full', page);
      linkNext(found.next);
      response.json(found.tasks.map((task) => fullView(task)));
    } else {
      const found = tasks.briefPageJson(page);
      linkNext(found.next);
      response.type('application/json').send(found.json);
    }
  });

  router.get('/:taskId', async (request, response) => {
    const query = parseRequest(GetQuery, request.query, 'query');
    let task = tasks.get(request.params.taskId);
    if (query.wait === 'finished' && !isFinished(task)) {
      // One controller and one timer per wait, both let go when it ends (AbortSignal.any on a
      // signal that lives as long as the process leaks on Node 20: nodejs/node#55351).
      const done = new AbortController();
      const end = () => done.abort();
      const timer = setTimeout(end, query.timeout * 1000);
      response.once('close', end);
      options.shuttingDown.addEventListener('abort', end, { once: true });
      try {
        // Deleted meanwhile: TASK_NOT_FOUND, as a GET then would say.
        task = (await tasks.whenFinished(task.taskId, done.signal)) ?? tasks.get(task.taskId);
      } finally {
        clearTimeout(timer);
        response.off('close', end);
        options.shuttingDown.removeEventListener('abort', end);
      }
    }
    response.json(fullView(task, tasks.usage(task)));
  });

  router.use('/:taskId/logs', logsRouter(logs, options));

  router.post('/:taskId/stop', async (request, response) => {
    const task = await tasks.stop(request.params.taskId);
    try {
      response.json(fullView(task));
    } finally {
      audit(request, 'task.stop', task.taskId, task.machine);
    }
  });

  router.delete('/:taskId', async (request, response) => {
    const task = await tasks.delete(request.params.taskId);
    try {
      response.json({ success: true });
    } finally {
      audit(request, 'task.delete', task.taskId, task.machine);
    }
  });

  return router;
}
