/**
 * The only code that runs journalctl: one child per read (and once, `journalctl --version` under
 * stdbuf, to see that stdbuf can run it), its JSON lines parsed into entries and
 * handed out in batches (one per chunk of output), with backpressure — while the consumer does not
 * ask for more, the pipe fills and journalctl waits. The child ends when the consumer stops or the
 * signal aborts; no child outlives its reader.
 */
import { execFile, spawn } from 'node:child_process';
import { parseJournalLine, type JournalEntry } from './entry.js';
import { journalctlCommand, STDBUF_OUTPUT_BUFFER, type JournalQuery } from './query.js';

export interface ReaderOptions {
  signal?: AbortSignal;
  /** (Default: journalctl from $PATH) */
  journalctl?: string;
  /**
   * coreutils' stdbuf to run journalctl under, for a 64 KiB output buffer (journalctlCommand); null:
   * journalctl as it is. (Default: /usr/bin/stdbuf when it runs journalctl, checked once; null when
   * `journalctl` is given)
   */
  stdbuf?: string | null;
  /** A line longer than this is replaced by a placeholder entry. (Default: 16 MiB) */
  maxLineBytes?: number;
  /** Called for lines that are not journal entries. */
  onSkippedLine?: (why: string) => void;
}

export class JournalctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'JournalctlError';
  }
}

let running = 0;
/** journalctl children alive now (for metrics and leak tests). */
export function runningReaders(): number {
  return running;
}

/**
 * An entry's cursor, wherever journalctl put the field (it prints fields in no fixed order). Only
 * the key can match: inside a value every quote is escaped.
 */
const CURSOR_FIELD = /"__CURSOR":"([^"]+)"/;
/** What is kept of a skipped entry between two reads, to find a cursor cut in two. */
const CURSOR_FIELD_SPAN = 256;

const STDBUF = '/usr/bin/stdbuf';
/** What coreutils' stdbuf tells the program it runs (through its LD_PRELOAD library). */
const STDBUF_VARIABLES = new Set(['_STDBUF_I', '_STDBUF_O', '_STDBUF_E']);
/** The last characters of journalctl's stderr kept for its error. */
const STDERR_KEPT = 4096;
let hostStdbuf: Promise<string | null> | undefined;

/** The stdbuf to run journalctl under: the host's, once it has been seen to run journalctl (checked once). */
function stdbufFor(options: ReaderOptions): Promise<string | null> {
  if (options.stdbuf !== undefined) return Promise.resolve(options.stdbuf);
  if (options.journalctl !== undefined) return Promise.resolve(null);
  hostStdbuf ??= new Promise((resolve) => {
    execFile(STDBUF, [STDBUF_OUTPUT_BUFFER, 'journalctl', '--version'], { timeout: 10_000, env: journalctlEnv() }, (error) =>
      resolve(error ? null : STDBUF),
    );
  });
  return hostStdbuf;
}

/**
 * journalctl's environment: no colours, pager or locale of the runner's, and no buffering a stdbuf the
 * runner itself was started under left in its environment (stdbuf sets its own, when used).
 */
function journalctlEnv(): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([name]) => !STDBUF_VARIABLES.has(name));
  return { ...Object.fromEntries(inherited), SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', LC_ALL: 'C.UTF-8' };
}

export async function* readJournal(query: JournalQuery, options: ReaderOptions = {}): AsyncGenerator<JournalEntry[]> {
  const maxLine = options.maxLineBytes ?? 16 * 1024 * 1024;
  const stdbuf = await stdbufFor(options);
  const [program, args] = journalctlCommand(query, { journalctl: options.journalctl ?? 'journalctl', stdbuf });
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env: journalctlEnv() });
  running += 1;
  let counted = true;
  // A child that could not be spawned reports 'error' (and its 'close' comes later): counted once.
  const uncount = () => {
    if (counted) running -= 1;
    counted = false;
  };
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      uncount();
      resolve(code);
    });
    child.once('error', () => {
      uncount();
      resolve(null);
    });
  });
  // The end is kept: journalctl says why it failed last, after any warnings about journal files.
  // An object: the listener changes it, which narrowing after the loop below cannot see.
  const stderr = { text: '', cut: false };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr.text += chunk;
    if (stderr.text.length <= STDERR_KEPT) return;
    stderr.text = stderr.text.slice(-STDERR_KEPT);
    stderr.cut = true;
  });
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));

  try {
    let partial = '';
    let skipping = false;
    /** A huge entry is being skipped and its cursor not seen yet: its last characters read, and its size so far. */
    let hunting: { tail: string; bytes: number } | null = null;
    const hunt = (text: string, batch: JournalEntry[]) => {
      if (!hunting) return;
      const seen = hunting.tail + text;
      const cursor = CURSOR_FIELD.exec(seen)?.[1];
      if (cursor) {
        batch.push(placeholder(cursor, hunting.bytes + text.length));
        hunting = null;
      } else hunting = { tail: seen.slice(-CURSOR_FIELD_SPAN), bytes: hunting.bytes + text.length };
    };
    // The entry of an after-cursor, read inclusively (see JournalQuery.afterCursor): first or nowhere.
    let dropFirst = query.afterCursor;
    for await (const chunk of child.stdout.setEncoding('utf8') as AsyncIterable<string>) {
      const batch: JournalEntry[] = [];
      let start = 0;
      for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
        const line = partial + chunk.slice(start, end);
        partial = '';
        start = end + 1;
        if (skipping) {
          skipping = false;
          hunt(line, batch);
          hunting = null;
          continue;
        }
        const entry = parseJournalLine(line);
        if (!entry) {
          options.onSkippedLine?.('not a journal entry');
          continue;
        }
        // Byte-equal only when it is that very entry from the same journal; anything else is kept.
        const isAfterCursor = dropFirst !== undefined && entry.cursor === dropFirst;
        dropFirst = undefined;
        if (!isAfterCursor) batch.push(entry);
      }
      if (!skipping) partial += chunk.slice(start);
      else hunt(chunk.slice(start), batch);
      if (partial.length > maxLine) {
        // A huge entry (a native-protocol blob): keep its place in the stream, not its content.
        hunting = { tail: '', bytes: 0 };
        hunt(partial, batch);
        options.onSkippedLine?.(`an entry over ${maxLine} bytes`);
        partial = '';
        skipping = true;
      }
      if (batch.length > 0) yield batch;
    }
    // journalctl ends every entry with a newline: text after the last one is an entry cut short.
    if (partial !== '' && !skipping) options.onSkippedLine?.('an unterminated last line');
    const code = await closed;
    if (spawnError) throw new JournalctlError(`cannot run journalctl: ${spawnError.message}`, null, '');
    if (code !== 0 && !options.signal?.aborted) {
      // Cut: from the first whole line kept.
      const said = stderr.cut ? `…${stderr.text.slice(stderr.text.indexOf('\n') + 1)}` : stderr.text;
      throw new JournalctlError(`journalctl failed (exit ${code}): ${said.trim()}`, code, said);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await closed;
  }
}

function placeholder(cursor: string, bytes: number): JournalEntry {
  return {
    cursor,
    realtime: 0n,
    monotonic: 0n,
    fields: Object.assign(Object.create(null) as Record<string, string>, {
      MESSAGE: `[an entry of more than ${bytes} bytes, left out]`,
      TESSIA_TRUNCATED: '1',
    }),
  };
}
