/**
 * The two streams: a task's journal entries, and every task's changes of state. Both are chunked
 * NDJSON, or server-sent events when asked (format=sse, or Accept: text/event-stream); both resume
 * where they broke off (after=, or Last-Event-ID as EventSource sends it).
 */
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { CURSOR_PATTERN } from '../../tasks/logs.js';
import { EVENT_ID, EventsQuery } from '../events-route.js';
import { LogQuery } from '../logs-route.js';
import { ANY_REQUEST, AUTHENTICATED, errorResponses } from './errors.js';
import { EventLine, LogLine } from './responses.js';
import { TaskIdPath } from './task-paths.js';

export const streamPaths: ZodOpenApiPathsObject = {
  '/v1/tasks/{taskId}/logs': {
    get: {
      operationId: 'streamTaskLogs',
      tags: ['streams'],
      summary: "Stream the task's journal entries",
      description:
        "The task's own output and systemd's lines about its unit, one JSON object a line (gzip when accepted). With " +
        'follow=true the stream goes on as the task writes and ends by itself once the task has ended, with an end line. ' +
        'format=text: plain lines; format=sse (or Accept: text/event-stream): server-sent events whose id is the cursor. ' +
        'Last-Event-ID (a cursor) resumes as after= does. Details: docs/logs.md.',
      requestParams: {
        path: TaskIdPath,
        query: LogQuery,
        header: z.object({ 'Last-Event-ID': z.string().regex(CURSOR_PATTERN).optional().meta({ description: 'as after=' }) }),
      },
      responses: {
        '200': {
          description: 'the stream (chunked)',
          content: {
            'application/x-ndjson': { schema: LogLine },
            'text/plain': { schema: z.string().meta({ description: 'journalctl-like lines (format=text)' }) },
            'text/event-stream': {
              schema: z.string().meta({
                description: 'events entry (id: the cursor), end, error and shutdown, each data a LogLine object without its type',
              }),
            },
          },
        },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED, [
          'INVALID_REQUEST',
          'TASK_NOT_FOUND',
          'INVALID_CURSOR',
          'TOO_MANY_LOG_STREAMS',
          'LOGS_UNAVAILABLE',
        ]),
      },
    },
  },
  '/v1/events': {
    get: {
      operationId: 'streamEvents',
      tags: ['streams'],
      summary: "Stream the tasks' changes of state",
      description:
        'The kept events after the given id (none by default: only new ones), then the live ones, without gap or duplicate, ' +
        'also across restarts of the runner. follow=false: the kept ones, then the end. Heartbeat lines keep an idle ' +
        'stream alive; a shutdown line ends it with the id to resume after.',
      requestParams: {
        query: EventsQuery,
        header: z.object({ 'Last-Event-ID': z.string().regex(EVENT_ID).optional().meta({ description: 'an event id: as after=' }) }),
      },
      responses: {
        '200': {
          description: 'the stream (chunked, never compressed)',
          content: {
            'application/x-ndjson': { schema: EventLine },
            'text/event-stream': {
              schema: z.string().meta({
                description:
                  'event: task (id: the event id; data: a TaskEventLine), event: shutdown (data: {detail, after}), heartbeat comments',
              }),
            },
          },
        },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED, ['INVALID_REQUEST', 'TOO_MANY_EVENT_STREAMS']),
      },
    },
  },
};
