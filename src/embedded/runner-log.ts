/**
 * The runner's journal entries (journalctl -o json) as people read them in a terminal:
 * `15:04:05.123 INFO  task started  task=3f9c2a1b state=running`. The JSON stays in the journal
 * (`journalctl -o json -u tessia-task-runner`).
 */
import { DEFAULT_PRIORITY, parsePriority, priorityName } from '../journal/priority.js';

/** Fields of every entry of ours that say nothing to a reader. */
const QUIET = /^(_|__|SYSLOG_|SYSLOG_IDENTIFIER$|MESSAGE$|PRIORITY$|CODE_|TESSIA_SERVICE$|INVOCATION_ID$)/;
const LABELS: Record<string, string> = { TESSIA_TASK_ID: 'task', TESSIA_REQUEST_ID: 'request', TESSIA_AUDIT: 'audit' };

export function runnerLogLine(jsonLine: string): string | null {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return null;
  }
  const micros = Number(entry['__REALTIME_TIMESTAMP'] ?? 0);
  const time = new Date(micros / 1000).toISOString().slice(11, 23);
  const priority = parsePriority(String(entry['PRIORITY'] ?? '')) ?? DEFAULT_PRIORITY;
  const level = priorityName(priority).toUpperCase().padEnd(7);
  const extras = Object.entries(entry)
    .filter(([name, value]) => !QUIET.test(name) && typeof value === 'string')
    .map(([name, value]) => `${LABELS[name] ?? name.replace(/^TESSIA_/, '').toLowerCase()}=${String(value)}`);
  return `${time} ${level} ${String(entry['MESSAGE'] ?? '')}${extras.length > 0 ? `  ${extras.join(' ')}` : ''}`;
}
