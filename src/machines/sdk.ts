/**
 * Helpers for machines written in JavaScript: read the task's parameters, and write journal
 * entries with a priority and fields of their own. With the optional native binding
 * (systemd-journald) entries go over journald's native protocol, fields and all; without it, to
 * stdout with a `<N>` priority prefix (fields are then left out). One transport for everything a
 * machine writes, so journald keeps its order.
 *
 *   import { readParameters, createTaskLog } from 'tessia-task-runner/sdk';
 *   const log = createTaskLog();
 *   log.warning('disk almost full', { DISK: '/dev/sda' });
 */
import { fstatSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

export type Fields = Record<string, string | number>;

export const PRIORITIES = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
export type PriorityName = keyof typeof PRIORITIES;

export interface TaskLog {
  /** The transport in use: "journal" (native protocol) or "stdout". */
  readonly transport: 'journal' | 'stdout';
  write(priority: PriorityName, message: string, fields?: Fields): void;
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

type NativeJournal = Record<PriorityName, (message: string, fields?: Record<string, string>) => void>;

function loadNative(): NativeJournal | null {
  try {
    return createRequire(import.meta.url)('systemd-journald') as NativeJournal;
  } catch {
    return null;
  }
}

export function createTaskLog(identifier = defaultIdentifier()): TaskLog {
  const native = process.env['TESSIA_LOG_TRANSPORT'] === 'stdout' ? null : loadNative();
  if (native) {
    return {
      transport: 'journal',
      write(priority, message, fields = {}) {
        const values: Record<string, string> = { SYSLOG_IDENTIFIER: identifier };
        for (const [name, value] of Object.entries(fields)) values[name] = String(value);
        native[priority](message, values);
      },
    };
  }
  return {
    transport: 'stdout',
    write(priority, message) {
      // Every line gets its prefix: text that starts with "<3>" is never read as a priority.
      const prefix = `<${PRIORITIES[priority]}>`;
      process.stdout.write(`${prefix}${message.split('\n').join(`\n${prefix}`)}\n`);
    },
  };
}

function defaultIdentifier(): string {
  const machine = process.env['TESSIA_MACHINE'];
  return machine ? `tessia-${machine}` : 'tessia-machine';
}
