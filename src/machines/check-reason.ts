/**
 * A check's reason, as the client gets it: one line, bounded, with nothing of the request's
 * parameters in it. A check is the admin's program and may quote what it rejects ("Invalid command
 * s3cr3t"); the runner never echoes parameters into an answer or a log, so every word of the reason
 * that is also a word of the parameters is replaced, whatever the check wrote.
 */

/** Longest reason kept, in characters. */
export const REASON_MAX_CHARS = 500;
/** Words shorter than this are kept: a line number or "a" is not the parameters. */
const MIN_WORD = 3;
const WORD = /[\p{L}\p{N}_]+/gu;
const REDACTED = '…';

/** The last line with text in what a check wrote to stderr, without control characters, bounded. */
export function lastLine(output: string): string {
  const lines = output.split(/\r?\n/).map((line) => line.replace(/\p{Cc}/gu, ' ').trim());
  const last = lines.reverse().find((line) => line !== '') ?? '';
  return last.length > REASON_MAX_CHARS ? `${last.slice(0, REASON_MAX_CHARS - 1)}…` : last;
}

/** `reason` with every word that is also a word of `parameters` (any case) replaced by "…". */
export function withoutParameters(reason: string, parameters: unknown): string {
  const words = wordsOf(parameters);
  if (words.size === 0) return reason;
  return reason.replace(WORD, (word) => (word.length >= MIN_WORD && words.has(word.toLowerCase()) ? REDACTED : word));
}

function wordsOf(parameters: unknown): Set<string> {
  const words = new Set<string>();
  const add = (text: string) => {
    for (const [word] of text.matchAll(WORD)) if (word.length >= MIN_WORD) words.add(word.toLowerCase());
  };
  const visit = (value: unknown, depth: number) => {
    if (depth > 256) return;
    if (typeof value === 'string') add(value);
    else if (typeof value === 'number') add(String(value));
    else if (Array.isArray(value)) for (const item of value) visit(item, depth + 1);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        add(key);
        visit(item, depth + 1);
      }
    }
  };
  visit(parameters, 0);
  return words;
}
