import compression from 'compression';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { TaskError } from '../tasks/errors.js';
import { CURSOR_PATTERN, PRIORITY_NAMES, parsePriority, type LogEvent, type LogRequest, type TaskLogs } from '../tasks/logs.js';
import { LOG_FORMATS, encoderFor, type LogEncoder, type LogFormat } from './log-encoders.js';
import { HttpError } from './errors.js';
import { StreamWriter } from './stream-writer.js';
import { parseRequest, queryBoolean } from './validation.js';

const cursor = z.string().regex(CURSOR_PATTERN, 'must be a journal cursor from an earlier entry');

export const LogQuery = z
  .strictObject({
    follow: queryBoolean
      .default(false)
      .meta({ description: 'keep streaming as the task writes; the stream ends by itself once the task has ended' }),
    after: cursor.optional().meta({ description: 'resume right after the entry with this cursor' }),
    tail: z.coerce
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .meta({ description: 'only the last N entries (then more, with follow)' }),
    since: z.iso.datetime({ offset: true }).optional().meta({ description: 'entries at or after this time (ISO 8601)' }),
    until: z.iso.datetime({ offset: true }).optional().meta({ description: 'entries before this time (ISO 8601)' }),
    priority: z
      .string()
      .transform((value, context) => {
        const level = parsePriority(value);
        if (level === undefined) {
          context.addIssue({ code: 'custom', message: `must be 0-7 or one of ${PRIORITY_NAMES.join(', ')}` });
          return z.NEVER;
        }
        return level;
      })
      .optional()
      .meta({ description: `this priority and more urgent ones: 0-7 or ${PRIORITY_NAMES.join(', ')}` }),
    fields: z
      .string()
      .transform((value) => value.split(',').filter((name) => name !== ''))
      .pipe(z.array(z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'field names are [A-Z0-9_]')).max(64))
      .optional()
      .meta({ description: 'only these journal fields in `fields`, comma-separated (trusted ones too when named)' }),
    trusted: queryBoolean.default(false).meta({ description: 'also the trusted fields (`_` and `__` prefixed) in `fields`' }),
    format: z
      .enum(LOG_FORMATS)
      .optional()
      .meta({ description: 'default: sse if Accept names text/event-stream, else ndjson; text: lines for humans' }),
  })
  .superRefine((query, context) => {
    if (query.after !== undefined && query.tail !== undefined) {
      context.addIssue({ code: 'custom', message: '"after" and "tail" cannot be used together' });
    }
    if (query.follow && query.until !== undefined) {
      context.addIssue({ code: 'custom', message: '"follow" and "until" cannot be used together' });
    }
    if (query.since && query.until && Date.parse(query.since) > Date.parse(query.until)) {
      context.addIssue({ code: 'custom', message: '"since" is after "until"' });
    }
  });

export interface LogRouteOptions {
  heartbeatMs: number;
  /** Streams open at once, all clients together; one more is refused (TOO_MANY_LOG_STREAMS). */
  maxLogStreams: number;
  shuttingDown: AbortSignal;
  /** +1 when a stream starts, -1 when it ends (metrics). */
  onStream?: (delta: 1 | -1) => void;
}

export function logsRouter(logs: TaskLogs, options: LogRouteOptions): Router {
  const router = Router({ mergeParams: true });
  // Streams are compressed when the client accepts it, from the first byte, and flushed with each
  // write (writes are gathered: stream-writer.ts).
  // Level 1: journal JSON compresses well even so, and the stream keeps up with journalctl.
  router.use(compression({ threshold: 0, level: 1, filter: () => true }));
  // Each stream is a journalctl child of the runner's (a follow stream reading a stretch again: two, for a
  // moment, at most one such read a second): at most maxLogStreams streams at once.
  let open = 0;
  router.get('/', async (request: Request<{ taskId: string }>, response: Response) => {
    const query = parseRequest(LogQuery, request.query, 'query');
    if (open >= options.maxLogStreams) {
      throw new HttpError(
        'TOO_MANY_LOG_STREAMS',
        `${options.maxLogStreams} log streams are open already (limits.maxLogStreams); try again when one has ended`,
      );
    }
    open += 1;
    try {
      await serveLogs(request, response, query);
    } finally {
      open -= 1;
    }
  });

  async function serveLogs(request: Request<{ taskId: string }>, response: Response, query: z.infer<typeof LogQuery>): Promise<void> {
    const lastEventId = request.get('last-event-id');
    if (lastEventId !== undefined && query.after === undefined) {
      query.after = parseRequest(cursor, lastEventId, 'Last-Event-ID');
    }
    // EventSource asks for text/event-stream; everything else gets NDJSON unless it names a format.
    const format: LogFormat = query.format ?? (request.get('accept')?.includes('text/event-stream') ? 'sse' : 'ndjson');
    const logRequest: LogRequest = { taskId: request.params.taskId, follow: query.follow };
    if (query.after !== undefined) logRequest.afterCursor = query.after;
    if (query.tail !== undefined) logRequest.tail = query.tail;
    if (query.since !== undefined) logRequest.since = new Date(query.since);
    if (query.until !== undefined) logRequest.until = new Date(query.until);
    if (query.priority !== undefined) logRequest.maxPriority = query.priority;

    // Ends the journal reading when the client goes away or the runner shuts down.
    const aborted = new AbortController();
    response.once('close', () => aborted.abort());
    const onShutdown = () => aborted.abort();
    options.shuttingDown.addEventListener('abort', onShutdown, { once: true });
    response.once('close', () => options.shuttingDown.removeEventListener('abort', onShutdown));
    const events = await logs.open(logRequest, aborted.signal);
    const view = query.fields
      ? { trusted: query.trusted, only: new Set(query.fields.map((f) => f.toUpperCase())) }
      : { trusted: query.trusted };
    const encoder = encoderFor(format, view);
    response.status(200);
    response.set({
      'Content-Type': encoder.contentType,
      'Cache-Control': 'no-store',
      // nginx and friends: do not buffer a stream.
      'X-Accel-Buffering': 'no',
    });
    response.flushHeaders();
    options.onStream?.(1);
    try {
      await stream(response, events, encoder, options, aborted.signal, request);
    } finally {
      options.onStream?.(-1);
    }
  }
  return router;
}

async function stream(
  response: Response,
  events: AsyncIterable<LogEvent>,
  encoder: LogEncoder,
  options: LogRouteOptions,
  signal: AbortSignal,
  request: Request,
): Promise<void> {
  const { heartbeatMs, shuttingDown } = options;
  const writer = new StreamWriter(response, signal);
  let lastCursor: string | undefined;
  /** The shutdown or error line that ends the stream, after everything gathered. */
  let last: string | undefined;
  const heartbeat =
    encoder.heartbeat() === null
      ? undefined
      : setInterval(
          () => {
            if (!writer.isQuietFor(heartbeatMs)) return;
            const beat = encoder.heartbeat();
            if (beat !== null && !signal.aborted) void writer.write(beat);
          },
          Math.max(100, Math.floor(heartbeatMs / 2)),
        );
  try {
    for await (const event of events) {
      if (signal.aborted) break;
      if (event.type === 'entries') {
        lastCursor = event.entries.at(-1)?.cursor ?? lastCursor;
        await writer.write(event.entries.map((entry) => encoder.entry(entry)).join(''));
      } else await writer.write(encoder.end(event.task));
    }
    if (shuttingDown.aborted && !response.writableEnded) last = encoder.shutdown(lastCursor);
  } catch (error) {
    if (shuttingDown.aborted && !response.destroyed) {
      last = encoder.shutdown(lastCursor);
    } else if (!signal.aborted) {
      request.log.error({ err: error }, 'log stream failed');
      const detail = error instanceof TaskError ? error.message : 'reading the journal failed';
      last = encoder.error(detail);
    }
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    writer.end(last);
  }
}
