/**
 * Helpers for machines written in JavaScript: read the task's parameters, and write journal
 * entries with a priority and fields of their own. With the optional `unix-dgram` addon entries go
 * over journald's native protocol, fields and all; without it, to stdout with a `<N>` priority
 * prefix (fields are then left out). One transport for everything a machine writes, so journald
 * keeps its order.
 *
 *   import { readParameters, createTaskLog } from 'tessia-task-runner/sdk';
 *   const log = createTaskLog();
 *   log.warning('disk almost full', { DISK: '/dev/sda' });
 *   await log.flush(); // before process.exit()
 */
import { fstatSync, readSync } from 'node:fs';
import { openNativeJournal } from '../journal/native.js';
import { journalFieldName } from '../journal/native-entry.js';
import { PRIORITIES, type PriorityName } from '../journal/priority.js';

export { PRIORITIES, type PriorityName };
export type Fields = Record<string, string | number>;

export interface TaskLog {
  /** The transport in use: "journal" (native protocol) or "stdout". */
  readonly transport: 'journal' | 'stdout';
  write(priority: PriorityName, message: string, fields?: Fields): void;
  /** Resolves once everything written has left the process, or after 5 s when journald does not take it. */
  flush(): Promise<void>;
}

/**
 * The request's `parameters`: JSON on the task's standard input, a regular file. Read at offset 0
 * (pread), so it can be read again, by this process or its children, whoever read stdin before.
 */
export function readParameters(): unknown {
  const STDIN = 0;
  const stat = fstatSync(STDIN);
  if (!stat.isFile()) throw new Error('stdin is not the parameters file: machines run as tessia task units');
  const size = stat.size;
  const buffer = Buffer.alloc(size);
  let read = 0;
  while (read < size) {
    const count = readSync(STDIN, buffer, read, size - read, read);
    if (count === 0) break;
    read += count;
  }
  return JSON.parse(buffer.subarray(0, read).toString('utf8'));
}

export function createTaskLog(identifier = defaultIdentifier()): TaskLog {
  const native = openNativeJournal();
  if (native) {
    return {
      transport: 'journal',
      write(priority, message, fields = {}) {
        const entry: Record<string, string> = {};
        for (const [name, value] of Object.entries(fields)) entry[journalFieldName(name)] = String(value);
        native.send({ ...entry, MESSAGE: message, PRIORITY: String(PRIORITIES[priority]), SYSLOG_IDENTIFIER: identifier });
      },
      flush: async () => {
        await native.flush();
      },
    };
  }
  return {
    transport: 'stdout',
    write(priority, message) {
      // Every line gets its prefix: text that starts with "<3>" is never read as a priority. journald
      // ends a stream's line at a NUL too, and cuts one longer than its LineMax= (48 KiB), the rest
      // read as a new line: each such piece gets the prefix as well.
      const prefix = `<${PRIORITIES[priority]}>`;
      const lines = message.split(/\n|\0/).flatMap((line) => piecesOf(line, LINE_PIECE_BYTES));
      process.stdout.write(lines.map((line) => `${prefix}${line}\n`).join(''));
    },
    flush: () => new Promise((resolve) => process.stdout.write('', () => resolve())),
  };
}

/** Below journald's LineMax= (48 KiB by default), with room for the prefix: as the tessia host cuts its lines. */
const LINE_PIECE_BYTES = 32 * 1024;

/** `line` in pieces of at most `bytes` bytes of UTF-8, cut between characters. */
function piecesOf(line: string, bytes: number): string[] {
  if (Buffer.byteLength(line) <= bytes) return [line];
  const pieces: string[] = [];
  let piece = '';
  let size = 0;
  for (const character of line) {
    const length = Buffer.byteLength(character);
    if (size + length > bytes) {
      pieces.push(piece);
      piece = '';
      size = 0;
    }
    piece += character;
    size += length;
  }
  pieces.push(piece);
  return pieces;
}

function defaultIdentifier(): string {
  const machine = process.env['TESSIA_MACHINE'];
  return machine ? `tessia-${machine}` : 'tessia-machine';
}
