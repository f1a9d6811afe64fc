/** The three wire formats of a log stream: NDJSON (default), plain text, and server-sent events. */
import type { LogEntry } from '../tasks/logs.js';
import type { TaskRecord } from '../tasks/model.js';
import { endText, endView, entryJson, entryText, type EntryViewOptions } from './log-views.js';

export const LOG_FORMATS = ['ndjson', 'text', 'sse'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogEncoder {
  contentType: string;
  entry(entry: LogEntry): string;
  end(task: TaskRecord): string;
  /** null: the format has no heartbeat (plain text stays plain). */
  heartbeat(): string | null;
  error(detail: string): string;
  /** The runner is going away: how to resume (after the last cursor sent). */
  shutdown(after: string | undefined): string;
}

const SHUTDOWN_DETAIL = 'the runner is shutting down; the task keeps running: resume with after=<cursor>';

const json = (value: unknown) => JSON.stringify(value);

export function encoderFor(format: LogFormat, view: EntryViewOptions): LogEncoder {
  switch (format) {
    case 'ndjson':
      return {
        contentType: 'application/x-ndjson; charset=utf-8',
        entry: (entry) => `${entryJson(entry, view)}\n`,
        end: (task) => `${json(endView(task))}\n`,
        heartbeat: () => `${json({ type: 'heartbeat', time: new Date().toISOString() })}\n`,
        error: (detail) => `${json({ type: 'error', detail })}\n`,
        shutdown: (after) => `${json({ type: 'shutdown', detail: SHUTDOWN_DETAIL, after: after ?? null })}\n`,
      };
    case 'text':
      return {
        contentType: 'text/plain; charset=utf-8',
        entry: (entry) => `${entryText(entry).replace(/\n/g, '\n    ')}\n`,
        end: (task) => `${endText(task)}\n`,
        heartbeat: () => null,
        error: (detail) => `-- error: ${detail} --\n`,
        shutdown: (after) => `-- the runner is shutting down; resume with after=${after ?? ''} --\n`,
      };
    case 'sse':
      return {
        contentType: 'text/event-stream; charset=utf-8',
        // The cursor is the event id: EventSource sends it back as Last-Event-ID to resume.
        entry: (entry) => `id: ${entry.cursor}\nevent: entry\ndata: ${entryJson(entry, view)}\n\n`,
        end: (task) => `event: end\ndata: ${json(endView(task))}\n\n`,
        heartbeat: () => `: heartbeat ${new Date().toISOString()}\n\n`,
        error: (detail) => `event: error\ndata: ${json({ detail })}\n\n`,
        // EventSource reconnects by itself, sending the last id (cursor) as Last-Event-ID.
        shutdown: (after) => `retry: 2000\nevent: shutdown\ndata: ${json({ detail: SHUTDOWN_DETAIL, after: after ?? null })}\n\n`,
      };
    default: {
      const unknown: never = format;
      throw new Error(`unknown log format ${String(unknown)}`);
    }
  }
}
