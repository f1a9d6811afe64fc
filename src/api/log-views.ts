/**
 * How a journal entry looks to API clients: the usual parts promoted (cursor, timestamp with
 * microseconds, priority as number and name, message), the rest in `fields` — the entry's own fields,
 * and `_`-prefixed trusted ones on request. Values are lossless: text as a string, other bytes as
 * {"base64": …}, a field that occurs several times as an array.
 */
import { fieldText, isSystemdLine, priorityName, type LogEntry } from '../tasks/logs.js';
import type { TaskRecord } from '../tasks/model.js';
import { isoFromMicros } from '../tasks/time.js';

export interface EntryViewOptions {
  /** Include `_` and `__` fields. (Default: false) */
  trusted: boolean;
  /** Only these fields in `fields` (trusted ones too when named). (Default: all) */
  only?: ReadonlySet<string>;
}

/**
 * An entry's view as one line of JSON: what JSON.stringify would make of an object with, in this
 * order, type, cursor, timestamp, priority, priorityName, message, source, fields and (for a message
 * that is not one plain string) messageRaw. Built as text directly: it runs for every entry of every
 * read, 100 000 times for a long one, and the object in between cost a third of the encoding.
 */
export function entryJson(entry: LogEntry, options: EntryViewOptions): string {
  const priority = priorityOf(entry);
  let fields = '';
  for (const name in entry.fields) {
    if (name === 'MESSAGE' || name === 'PRIORITY') continue;
    if (options.only ? !options.only.has(name) : !options.trusted && name.charCodeAt(0) === 95 /* _ */) continue;
    const value = entry.fields[name];
    // The entry's address fields (its cursor and timestamps, promoted) are kept as undefined.
    if (value === undefined) continue;
    fields += `${fields === '' ? '' : ','}${JSON.stringify(name)}:${JSON.stringify(value)}`;
  }
  const message = entry.fields['MESSAGE'];
  const timestamp = entry.realtime > 0n ? `"${isoFromMicros(entry.realtime)}"` : 'null';
  // A message that is not one plain string (bytes, or several values) keeps its exact value(s) too.
  const raw = message !== undefined && typeof message !== 'string' ? `,"messageRaw":${JSON.stringify(message)}` : '';
  return (
    `{"type":"entry","cursor":${JSON.stringify(entry.cursor)},"timestamp":${timestamp},"priority":${priority},` +
    `"priorityName":"${priorityName(priority)}","message":${JSON.stringify(fieldText(message) ?? '')},` +
    `"source":"${isSystemdLine(entry) ? 'systemd' : 'task'}","fields":{${fields}}${raw}}`
  );
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
