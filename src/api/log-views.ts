/**
 * How a journal entry looks to API clients: the usual parts promoted (cursor, timestamp with
 * microseconds, priority as number and name, message), the rest in `fields` — the entry's own fields,
 * and `_`-prefixed trusted ones on request. Values are lossless: text as a string, other bytes as
 * {"base64": …}, a field that occurs several times as an array.
 */
import { fieldText, isSystemdLine, priorityName, type LogEntry, type LogField } from '../tasks/logs.js';
import type { TaskRecord } from '../tasks/model.js';
import { isoFromMicros } from '../tasks/time.js';

export interface EntryViewOptions {
  /** Include `_` and `__` fields. (Default: false) */
  trusted: boolean;
  /** Only these fields in `fields` (trusted ones too when named). (Default: all) */
  only?: ReadonlySet<string>;
}

const PROMOTED = new Set(['MESSAGE', 'PRIORITY']);

export function entryView(entry: LogEntry, options: EntryViewOptions) {
  const priority = priorityOf(entry);
  const fields: Record<string, LogField> = {};
  for (const name in entry.fields) {
    if (PROMOTED.has(name)) continue;
    if (options.only ? !options.only.has(name) : !options.trusted && name.charCodeAt(0) === 95 /* _ */) continue;
    const value = entry.fields[name];
    // The entry's address fields (its cursor and timestamps, promoted) are kept as undefined.
    if (value !== undefined) fields[name] = value;
  }
  const message = entry.fields['MESSAGE'];
  const view: Record<string, unknown> = {
    type: 'entry',
    cursor: entry.cursor,
    timestamp: entry.realtime > 0n ? isoFromMicros(entry.realtime) : null,
    priority,
    priorityName: priorityName(priority),
    message: fieldText(message) ?? '',
    source: isSystemdLine(entry) ? 'systemd' : 'task',
    fields,
  };
  // A message that is not one plain string (bytes, or several values) keeps its exact value(s) too.
  if (message !== undefined && typeof message !== 'string') view['messageRaw'] = message;
  return view;
}

export function endView(task: TaskRecord) {
  return {
    type: 'end',
    taskId: task.taskId,
    state: task.state,
    exitCode: task.exitCode,
    result: task.result,
    finishedAt: task.finishedAt,
    detail: task.detail,
  };
}

/** A line like journalctl's short-iso-precise: `2026-01-02T03:04:05.123456Z tessia-echo[42]: text`. */
export function entryText(entry: LogEntry): string {
  const identifier = fieldText(entry.fields['SYSLOG_IDENTIFIER']) ?? fieldText(entry.fields['_COMM']) ?? 'unknown';
  const pid = fieldText(entry.fields['SYSLOG_PID']) ?? fieldText(entry.fields['_PID']);
  const time = entry.realtime > 0n ? isoFromMicros(entry.realtime) : '-';
  return `${time} ${identifier}${pid ? `[${pid}]` : ''}: ${fieldText(entry.fields['MESSAGE']) ?? ''}`;
}

export function endText(task: TaskRecord): string {
  const code = task.exitCode === null ? '' : `, exit code ${task.exitCode}`;
  return `-- task ${task.taskId} ${task.state}${code}${task.result ? ` (${task.result})` : ''} --`;
}

function priorityOf(entry: LogEntry): number {
  const text = fieldText(entry.fields['PRIORITY']);
  return text !== undefined && /^[0-7]$/.test(text) ? Number(text) : 6;
}
