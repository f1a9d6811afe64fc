/**
 * What to read from the journal, and the journalctl argument list for it. The argv is built only
 * from validated values: field names from our own code, cursors and numbers checked here.
 */

/** FIELD=value; values come from the runner's own ids, never from a request. */
export type JournalMatch = readonly [field: string, value: string];

/**
 * Which journals to read (journalctl --namespace=): a namespace's own, or with `andDefault` the
 * namespace's and the default namespace's interleaved (`+NAME`), as a unit in a namespace has its
 * own output there but systemd's lines about it (PID 1 logs to the default namespace) here.
 */
export interface JournalNamespace {
  name: string;
  andDefault: boolean;
}

export interface JournalQuery {
  /** Entries matching any of these groups; within a group, every match. */
  matches: readonly (readonly JournalMatch[])[];
  /** (Default: the default namespace only) */
  namespace?: JournalNamespace;
  /**
   * Start right after this entry. Read as --cursor= (inclusive), the entry itself dropped by the
   * reader: journalctl 252's --after-cursor= seeks, then skips one entry whatever it is, so a
   * cursor whose entry is not among the matches (another task's, or rotated away) lost one.
   */
  afterCursor?: string;
  /** Start at this entry (inclusive). */
  atCursor?: string;
  /** Only the last N entries (then new ones, when following). */
  tail?: number;
  since?: Date;
  until?: Date;
  /** 0 (emerg) … 7 (debug): entries at this priority or more urgent. */
  maxPriority?: number;
  follow?: boolean;
}

/**
 * What a cursor may contain. Cursors are opaque (sd_journal_get_cursor(3)): only journald parses
 * them, so this checks characters and length, not their layout; a cursor journald cannot seek to is
 * journalctl's error.
 */
export const CURSOR_PATTERN = /^[A-Za-z0-9=;]{1,512}$/;
const FIELD_NAME = /^[A-Z0-9_]{1,64}$/;
const MATCH_VALUE = /^[A-Za-z0-9_.@:-]{1,255}$/;
/** What systemd takes as a namespace (a unit-name-safe word; not "*" nor a "+" prefix, which the builder adds). */
const NAMESPACE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export class InvalidJournalQuery extends Error {}

export function isCursor(value: string): boolean {
  return CURSOR_PATTERN.test(value);
}

export function journalctlArgs(query: JournalQuery): string[] {
  const args = ['--output=json', '--all', '--no-pager', '--quiet'];
  if (query.namespace !== undefined) {
    const { name, andDefault } = query.namespace;
    if (!NAMESPACE_NAME.test(name)) throw new InvalidJournalQuery('bad namespace');
    args.push(`--namespace=${andDefault ? '+' : ''}${name}`);
  }
  if (query.follow) args.push('--follow');
  if (query.afterCursor !== undefined && query.atCursor !== undefined) {
    throw new InvalidJournalQuery('afterCursor and atCursor exclude each other');
  }
  const cursor = query.afterCursor ?? query.atCursor;
  if (cursor !== undefined) {
    if (!isCursor(cursor)) throw new InvalidJournalQuery('malformed cursor');
    args.push(`--cursor=${cursor}`);
  }
  if (query.tail !== undefined) {
    if (!Number.isSafeInteger(query.tail) || query.tail < 0) throw new InvalidJournalQuery('tail must be a count');
    args.push(`--lines=${query.tail}`);
  } else if (query.follow) {
    args.push('--lines=all');
  }
  if (query.since) args.push(`--since=${epoch(query.since)}`);
  if (query.until) args.push(`--until=${epoch(query.until)}`);
  if (query.maxPriority !== undefined) {
    if (!Number.isInteger(query.maxPriority) || query.maxPriority < 0 || query.maxPriority > 7) {
      throw new InvalidJournalQuery('priority must be 0…7');
    }
    args.push(`--priority=0..${query.maxPriority}`);
  }
  if (query.matches.length === 0) throw new InvalidJournalQuery('a query needs matches');
  args.push('--');
  query.matches.forEach((group, index) => {
    // An empty group would match every entry of the journal: other tasks' too.
    if (group.length === 0) throw new InvalidJournalQuery('a match group needs matches');
    if (index > 0) args.push('+');
    for (const [field, value] of group) {
      if (!FIELD_NAME.test(field) || !MATCH_VALUE.test(value)) throw new InvalidJournalQuery(`bad match ${field}`);
      args.push(`${field}=${value}`);
    }
  });
  return args;
}

/** stdbuf's option that gives journalctl's output a 64 KiB buffer. */
export const STDBUF_OUTPUT_BUFFER = '--output=64K';

/** The journalctl to run, and the stdbuf to run it under (null: as it is). */
export interface JournalctlProgram {
  journalctl: string;
  stdbuf: string | null;
}

/**
 * The program and argv of a read. Under coreutils' stdbuf, journalctl's output gets a 64 KiB buffer:
 * glibc gives a pipe 4 KiB, and a long read was then ~17 000 writes by journalctl and as many
 * wake-ups of the runner (100 000 entries). journalctl flushes its output itself before it waits for
 * new entries (--follow), so a followed line is not held back.
 */
export function journalctlCommand(query: JournalQuery, program: JournalctlProgram): [string, string[]] {
  const args = journalctlArgs(query);
  if (program.stdbuf === null) return [program.journalctl, args];
  return [program.stdbuf, [STDBUF_OUTPUT_BUFFER, program.journalctl, ...args]];
}

/** systemd.time(7) "@seconds.fraction", to the millisecond (all a Date holds). */
function epoch(date: Date): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new InvalidJournalQuery('invalid date');
  return `@${Math.floor(ms / 1000)}.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`;
}
