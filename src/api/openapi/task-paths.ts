/** /v1/tasks and one task: start, list, get (and wait for), stop, delete. */
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { GetQuery, IdempotencyKeyHeader, ListQuery, NewTaskBody } from '../tasks-routes.js';
import { ANY_REQUEST, AUTHENTICATED, JSON_BODY, WRITE, errorResponses } from './errors.js';
import { BriefTask, Success, Task } from './responses.js';

export const TaskIdPath = z.object({
  taskId: z.string().meta({ description: "the task's id (8 hex digits), as its start answered" }),
});

const Location = z.string().meta({ description: 'the URL of the task: /v1/tasks/{taskId}' });

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

export const taskPaths: ZodOpenApiPathsObject = {
  '/v1/tasks': {
    get: {
      operationId: 'listTasks',
      tags: ['tasks'],
      summary: 'List tasks in creation order, a page at a time',
      description:
        'The brief view is the tessia v1 list, [{taskId, state}]; view=full gives every field. While more tasks follow, ' +
        'the Link header names the next page (its cursor is opaque: follow the link).',
      requestParams: { query: ListQuery },
      responses: {
        '200': {
          description: 'a page of tasks: brief items, or full ones with view=full',
          headers: z.object({
            Link: z.string().optional().meta({ description: 'the next page, while there is one: <URL>; rel="next" (RFC 8288)' }),
          }),
          content: json(z.union([z.array(BriefTask), z.array(Task)])),
        },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED, ['INVALID_REQUEST']),
      },
    },
    post: {
      operationId: 'startTask',
      tags: ['tasks'],
      summary: 'Start a task',
      description:
        "Answers once systemd's start job is done, so the state is real (running, or exited). With an Idempotency-Key, " +
        'the same key and request again answer with the task the first one started (200, Idempotent-Replayed: true). ' +
        "A machine with a check (an executable's `check`, a tessia machine's validate) has it run first, in a unit of its own: " +
        'a rejection is INVALID_PARAMETERS with its reason, and nothing is created unless it passes.',
      requestParams: { header: z.object({ 'Idempotency-Key': IdempotencyKeyHeader.optional() }) },
      requestBody: { required: true, content: json(NewTaskBody) },
      responses: {
        '200': {
          description: 'a replay: this Idempotency-Key started this task for the same request before',
          headers: z.object({ Location, 'Idempotent-Replayed': z.literal('true') }),
          content: json(Task),
        },
        '201': { description: 'started: systemd finished the start job', headers: z.object({ Location }), content: json(Task) },
        ...errorResponses(ANY_REQUEST, WRITE, JSON_BODY, [
          'INVALID_REQUEST',
          'UNKNOWN_MACHINE',
          'INVALID_PARAMETERS',
          'PARAMETERS_TOO_LARGE',
          'IDEMPOTENCY_KEY_REUSED',
          'TOO_MANY_TASKS',
          'MACHINE_BUSY',
          'START_FAILED',
          'TOO_MANY_CHECKS',
          'CHECK_FAILED',
          'CHECK_TIMEOUT',
          'SYSTEMD_UNAVAILABLE',
          'STORE_UNWRITABLE',
        ]),
      },
    },
  },
  '/v1/tasks/{taskId}': {
    get: {
      operationId: 'getTask',
      tags: ['tasks'],
      summary: 'One task, every field; with wait=finished, once it has finished',
      requestParams: { path: TaskIdPath, query: GetQuery },
      responses: {
        '200': { description: 'the task (with wait=finished: finished, or as it is when the timeout ran out)', content: json(Task) },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED, ['INVALID_REQUEST', 'TASK_NOT_FOUND']),
      },
    },
    delete: {
      operationId: 'deleteTask',
      tags: ['tasks'],
      summary: 'Forget a task (a running one is stopped first)',
      description:
        'Hides the task at once and answers once systemd has taken the stop; the record goes once the unit has ended. ' +
        'A DELETE again while the task still stops sends SIGKILL. A 503: if the task is no longer listed, the delete is ' +
        'recorded and will be finished; if systemd refused the stop, nothing was deleted.',
      requestParams: { path: TaskIdPath },
      responses: {
        '200': { description: 'forgotten', content: json(Success) },
        ...errorResponses(ANY_REQUEST, WRITE, ['TASK_NOT_FOUND', 'SYSTEMD_UNAVAILABLE', 'STORE_UNWRITABLE']),
      },
    },
  },
  '/v1/tasks/{taskId}/stop': {
    post: {
      operationId: 'stopTask',
      tags: ['tasks'],
      summary: 'Stop a task: SIGTERM and its grace period; a second stop: SIGKILL now',
      requestParams: { path: TaskIdPath },
      responses: {
        '200': { description: 'the task once it has ended, or after tasks.stopWaitSec (stopping)', content: json(Task) },
        ...errorResponses(ANY_REQUEST, WRITE, ['TASK_NOT_FOUND', 'SYSTEMD_UNAVAILABLE', 'STORE_UNWRITABLE']),
      },
    },
  },
};
