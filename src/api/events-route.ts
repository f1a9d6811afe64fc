/**
 * GET /v1/events: task state changes as a stream (NDJSON, or server-sent events), resumable from an
 * event id without gap or duplicate. A subscriber first gets the kept events after its id, then the
 * live ones; one that cannot keep up is not buffered for: it is served from the store again once
 * its socket drains. No journal reader and no D-Bus call per subscriber.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { MACHINE_NAME } from '../config/schema.js';
import type { TaskEvent } from '../tasks/model.js';
import type { TaskService } from '../tasks/service.js';
import { TASK_ID_PATTERN } from '../tasks/unit-names.js';
import { HttpError } from './errors.js';
import { parseRequest, queryBoolean } from './validation.js';

export const EVENT_ID = /^\d{1,15}$/;
/** Kept events sent per read of the store: a subscriber far behind catches up in steps. */
const CATCH_UP_BATCH = 500;

export const EventsQuery = z.strictObject({
  after: z
    .string()
    .regex(EVENT_ID, 'must be an event id')
    .transform(Number)
    .optional()
    .meta({ description: 'resume after this event id (Last-Event-ID does the same); 0: every kept event; default: only new ones' }),
  task: z.string().regex(TASK_ID_PATTERN, 'must be a task id').optional().meta({ description: 'only the events of this task' }),
  machine: z
    .string()
    .regex(MACHINE_NAME, 'must be a machine name')
    .optional()
    .meta({ description: 'only the events of tasks of this machine' }),
  follow: queryBoolean.default(true).meta({ description: 'keep the stream open for new events (default); false: the kept ones, then end' }),
  format: z.enum(['ndjson', 'sse']).optional().meta({ description: 'default: sse if Accept names text/event-stream, else ndjson' }),
});

export interface EventsRouteOptions {
  heartbeatMs: number;
  /** Streams open at once, all clients together; one more is refused (TOO_MANY_EVENT_STREAMS). */
  maxEventStreams: number;
  shuttingDown: AbortSignal;
}

type Format = 'ndjson' | 'sse';

/** An event's line in each format, made once however many subscribers send it. */
const encoded = new WeakMap<TaskEvent, Record<Format, string>>();

function encode(event: TaskEvent, format: Format): string {
  let lines = encoded.get(event);
  if (!lines) {
    const json = JSON.stringify({ type: 'task', ...event });
    lines = { ndjson: `${json}\n`, sse: `id: ${event.id}\nevent: task\ndata: ${json}\n\n` };
    encoded.set(event, lines);
  }
  return lines[format];
}

const heartbeat = (format: Format) =>
  format === 'sse'
    ? `: heartbeat ${new Date().toISOString()}\n\n`
    : `${JSON.stringify({ type: 'heartbeat', time: new Date().toISOString() })}\n`;

function shutdownLine(format: Format, after: number): string {
  const detail = `the runner is shutting down; resume with after=${after}`;
  return format === 'sse'
    ? `retry: 2000\nevent: shutdown\ndata: ${JSON.stringify({ detail, after })}\n\n`
    : `${JSON.stringify({ type: 'shutdown', detail, after })}\n`;
}

export function eventsRouter(tasks: TaskService, options: EventsRouteOptions): Router {
  const router = Router();
  let open = 0;
  router.get('/', (request: Request, response: Response) => {
    const query = parseRequest(EventsQuery, request.query, 'query');
    const lastEventId = request.get('last-event-id');
    if (lastEventId !== undefined && query.after === undefined) {
      query.after = Number(parseRequest(z.string().regex(EVENT_ID, 'must be an event id'), lastEventId, 'Last-Event-ID'));
    }
    if (query.follow && open >= options.maxEventStreams) {
      throw new HttpError(
        'TOO_MANY_EVENT_STREAMS',
        `${options.maxEventStreams} event streams are open already (limits.maxEventStreams); try again when one has ended`,
      );
    }
    const format: Format = query.format ?? (request.get('accept')?.includes('text/event-stream') ? 'sse' : 'ndjson');
    const filter = {
      ...(query.task === undefined ? {} : { taskId: query.task }),
      ...(query.machine === undefined ? {} : { machine: query.machine }),
    };
    const matches = (event: TaskEvent) =>
      (filter.taskId === undefined || event.taskId === filter.taskId) && (filter.machine === undefined || event.machine === filter.machine);
    const events = tasks.events;

    response.status(200).set({
      'Content-Type': format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    response.flushHeaders();

    let sent = query.after ?? events.lastId();
    let lastWrite = Date.now();
    /** The socket's buffer is full: live events wait in the store until it drains. */
    let blocked = false;
    const write = (chunk: string) => {
      lastWrite = Date.now();
      if (!response.write(chunk)) blocked = true;
    };
    /**
     * Sends kept events after `sent` until caught up (true) or blocked (false); synchronous, like
     * the store.
     */
    const catchUp = (): boolean => {
      while (!blocked && !response.destroyed) {
        const batch = events.after(sent, CATCH_UP_BATCH, filter);
        for (const event of batch) write(encode(event, format));
        const last = batch.at(-1);
        if (last) sent = last.id;
        if (batch.length < CATCH_UP_BATCH) return true;
      }
      return false;
    };
    if (!query.follow) {
      // Every kept event, however many: a full socket is waited for, then reading goes on.
      const dump = () => {
        if (catchUp()) response.end();
      };
      response.on('drain', () => {
        blocked = false;
        dump();
      });
      dump();
      return;
    }
    catchUp();
    open += 1;
    // Subscribed in the same step as the catch-up: no event is written in between.
    const unsubscribe = events.subscribe((event) => {
      if (event.id <= sent || blocked) return;
      // Not ours: skipped, and the next catch-up need not look at it again.
      if (matches(event)) write(encode(event, format));
      sent = event.id;
    });
    const onDrain = () => {
      blocked = false;
      catchUp();
    };
    response.on('drain', onDrain);
    const beat = setInterval(
      () => {
        if (!blocked && Date.now() - lastWrite >= options.heartbeatMs) write(heartbeat(format));
      },
      Math.max(100, Math.floor(options.heartbeatMs / 2)),
    );
    const onShutdown = () => {
      if (!response.writableEnded) response.end(shutdownLine(format, sent));
    };
    options.shuttingDown.addEventListener('abort', onShutdown, { once: true });
    response.once('close', () => {
      open -= 1;
      unsubscribe();
      clearInterval(beat);
      response.off('drain', onDrain);
      options.shuttingDown.removeEventListener('abort', onShutdown);
    });
  });
  return router;
}
