/**
 * The runner's own log, with pino: under systemd, native journald entries (PRIORITY from the
 * level; the task id, request id, caller identity and audit action as fields of their own, so
 * `journalctl -u tessia-task-runner TESSIA_TASK_ID=…` finds the runner's lines about a task);
 * pretty lines on a terminal; JSON lines anywhere else.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

type NativeJournal = Record<'crit' | 'err' | 'warning' | 'info' | 'debug', (message: string, fields?: Record<string, string>) => void>;

const PRIORITY_OF_LEVEL: [number, keyof NativeJournal][] = [
  [60, 'crit'],
  [50, 'err'],
  [40, 'warning'],
  [30, 'info'],
  [0, 'debug'],
];

/** pino keys with a journald field name of their own; other keys become UPPER_CASE fields. */
const FIELD_NAMES: Record<string, string> = {
  taskId: 'TESSIA_TASK_ID',
  reqId: 'TESSIA_REQUEST_ID',
  identity: 'TESSIA_IDENTITY',
  audit: 'TESSIA_AUDIT',
  machine: 'TESSIA_MACHINE',
  source: 'TESSIA_SOURCE',
  unit: 'TESSIA_UNIT',
};
const LEFT_OUT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service']);

export function createLogger(level: string): Logger {
  const journal = journalIfConnected();
  if (journal) return pino({ level, base: { service: 'tessia-task-runner' } }, journalDestination(journal));
  if (process.stdout.isTTY) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } });
  }
  return pino({ level, base: { service: 'tessia-task-runner' } });
}

/** systemd sets JOURNAL_STREAM to the device:inode of the journal stream our stdout/stderr is. */
function journalIfConnected(): NativeJournal | null {
  const stream = process.env['JOURNAL_STREAM'];
  if (!stream || process.env['TESSIA_LOG_FORMAT'] === 'json') return null;
  try {
    const stdout = statSync('/dev/stdout');
    if (`${stdout.dev}:${stdout.ino}` !== stream) return null;
    return createRequire(import.meta.url)('systemd-journald') as NativeJournal;
  } catch {
    return null;
  }
}

function journalDestination(journal: NativeJournal): DestinationStream {
  return {
    write(line: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        journal.info(line.trimEnd());
        return;
      }
      const fields: Record<string, string> = { SYSLOG_IDENTIFIER: 'tessia-task-runner' };
      for (const [key, value] of Object.entries(record)) {
        if (LEFT_OUT.has(key) || value === undefined || value === null) continue;
        const name = FIELD_NAMES[key] ?? `TESSIA_${key.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
        fields[name] = typeof value === 'string' ? value : JSON.stringify(value);
      }
      const level = Number(record['level'] ?? 30);
      const priority = PRIORITY_OF_LEVEL.find(([threshold]) => level >= threshold)?.[1] ?? 'info';
      journal[priority](String(record['msg'] ?? ''), fields);
    },
  };
}
