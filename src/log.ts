/**
 * The runner's own log, with pino. Under systemd: native journald entries (PRIORITY from the level;
 * the task id, request id, caller identity and audit action as fields of their own, so
 * `journalctl -u tessia-task-runner TESSIA_TASK_ID=…` finds the runner's lines about a task), or,
 * without the native transport, one `<N>`-prefixed line per entry with those fields as KEY=value
 * text (`journalctl -u tessia-task-runner --grep TESSIA_TASK_ID=…`). On a terminal: pretty lines.
 * Anywhere else, or with TESSIA_LOG_FORMAT=json: pino's JSON lines.
 */
import { statSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { tryNativeJournal, type NativeJournal, type NativeJournalOff } from './journal/native.js';
import { journalFieldName, type JournalFields } from './journal/native-entry.js';
import { DEFAULT_PRIORITY, PRIORITIES, type Priority } from './journal/priority.js';

/** pino's numeric levels (fatal 60 … debug 20, trace 10) as journal priorities. */
const PRIORITY_OF_LEVEL: [minimumLevel: number, Priority][] = [
  [60, PRIORITIES.crit],
  [50, PRIORITIES.err],
  [40, PRIORITIES.warning],
  [30, PRIORITIES.info],
  [0, PRIORITIES.debug],
];

/** pino keys with a journald field name of their own; other keys become TESSIA_<KEY> fields. */
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
const IDENTIFIER = 'tessia-task-runner';

/**
 * Credentials never reach a log line: a change's request is logged with its headers (and the answer's: src/api/request-log.ts),
 * and the journal is readable by the systemd-journal and adm groups and every log shipper. Redacted
 * by the root logger, so every child (each request's logger included) and every output honours it.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  // Not a secret, but a client's own name for a request, which may say what it does.
  'req.headers["idempotency-key"]',
];
const redact = { paths: REDACTED_PATHS, censor: '[redacted]' };

export type LogOutput = 'journal' | 'journal-text' | 'pretty' | 'json';

export interface RunnerLog {
  log: Logger;
  output: LogOutput;
  /** Why the output is 'journal-text' and not 'journal'. */
  nativeJournalOff?: NativeJournalOff;
  /** Resolves once every line logged so far has left the process, or after a few seconds (call before exiting). */
  flush: () => Promise<void>;
}

/**
 * `service`: the process ends by exiting (process.exit), never by running out of work: the native
 * journal's socket stays open between entries (NativeJournalOptions.keepOpen).
 */
export function createLogger(level: string, { service = false }: { service?: boolean } = {}): RunnerLog {
  if (process.env['TESSIA_LOG_FORMAT'] !== 'json' && stdoutIsJournal()) {
    const { journal: native, off } = tryNativeJournal(process.env, { keepOpen: service });
    const log = pino({ level, redact, base: { service: IDENTIFIER } }, journalDestination(native));
    if (off) return { log, output: 'journal-text', nativeJournalOff: off, flush: () => flushPino(log) };
    return {
      log,
      output: 'journal',
      flush: async () => {
        await native.flush();
      },
    };
  }
  if (process.stdout.isTTY && process.env['TESSIA_LOG_FORMAT'] !== 'json') {
    const options = { colorize: true, translateTime: 'SYS:standard' };
    const log = pino({ level, redact, transport: { target: 'pino-pretty', options } });
    return { log, output: 'pretty', flush: () => flushPino(log) };
  }
  const log = pino({ level, redact, base: { service: IDENTIFIER } });
  return { log, output: 'json', flush: () => flushPino(log) };
}

function flushPino(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

/** systemd sets JOURNAL_STREAM to the device:inode of the journal stream our stdout is. */
function stdoutIsJournal(): boolean {
  const stream = process.env['JOURNAL_STREAM'];
  if (!stream) return false;
  try {
    const stdout = statSync('/dev/stdout');
    return `${stdout.dev}:${stdout.ino}` === stream;
  } catch {
    return false;
  }
}

/** pino's JSON line as a journal entry: to the native journal, or as a `<N>` line to stdout. */
function journalDestination(native: NativeJournal | null): DestinationStream {
  return {
    write(line: string) {
      const fields = journalFields(line);
      if (native) native.send(fields);
      else process.stdout.write(textLine(fields));
    },
  };
}

export function journalFields(line: string): JournalFields {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { MESSAGE: line.trimEnd(), PRIORITY: String(DEFAULT_PRIORITY), SYSLOG_IDENTIFIER: IDENTIFIER };
  }
  const level = Number(record['level'] ?? 30);
  const priority = PRIORITY_OF_LEVEL.find(([minimum]) => level >= minimum)?.[1] ?? DEFAULT_PRIORITY;
  const fields: JournalFields = {
    MESSAGE: typeof record['msg'] === 'string' ? record['msg'] : '',
    PRIORITY: String(priority),
    SYSLOG_IDENTIFIER: IDENTIFIER,
  };
  for (const [key, value] of Object.entries(record)) {
    if (LEFT_OUT.has(key) || value === undefined || value === null) continue;
    const name = FIELD_NAMES[key] ?? `TESSIA_${journalFieldName(key)}`;
    fields[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return fields;
}

/** `<6>message KEY=value …` on one line: journald keeps the priority, grep finds the fields. */
export function textLine(fields: JournalFields): string {
  const { MESSAGE, PRIORITY, SYSLOG_IDENTIFIER: _identifier, ...rest } = fields;
  // A value that holds `=` (a request's URL) is quoted with it escaped: `journalctl --grep
  // 'TESSIA_AUDIT=task.start'` then finds the runner's own field only, never a client's text.
  const pairs = Object.entries(rest).map(
    ([name, value]) => `${name}=${/[\s"=\\]/.test(value) ? JSON.stringify(value).replaceAll('=', '\\u003d') : value}`,
  );
  const text = [MESSAGE ?? '', ...pairs].join(' ').replace(/\n/g, '\\n');
  return `<${PRIORITY ?? DEFAULT_PRIORITY}>${text}\n`;
}
