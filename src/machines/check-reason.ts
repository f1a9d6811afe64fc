/**
 * A check's reason, as the client gets it: one line, bounded, with nothing of the request's
 * parameters in it. A check is the admin's program and may quote what it rejects ("Invalid command
 * s3cr3t"); the runner never echoes parameters into an answer or a log, so every word of the reason
 * that is also a word of the parameters' values is replaced, whatever the check wrote. The names of
 * their keys are the machine's vocabulary ('"from" must be a number'): a word that names a key is kept.
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

/** `reason` with every word that is also a word of a value of `parameters` (any case) replaced by "…". */
export function withoutParameters(reason: string, parameters: unknown): string {
  const { values, keys } = wordsOf(parameters);
  const hidden = (word: string) => word.length >= MIN_WORD && values.has(word.toLowerCase()) && !keys.has(word.toLowerCase());
  return reason.replace(WORD, (word) => (hidden(word) ? REDACTED : word));
}

function wordsOf(parameters: unknown): { values: Set<string>; keys: Set<string> } {
  const values = new Set<string>();
  const keys = new Set<string>();
  const add = (into: Set<string>, text: string) => {
    for (const [word] of text.matchAll(WORD)) if (word.length >= MIN_WORD) into.add(word.toLowerCase());
  };
  // Iterative: parameters nest as deep as limits.maxJsonDepth allows.
  const pending: unknown[] = [parameters];
  for (let value = pending.pop(); pending.length > 0 || value !== undefined; value = pending.pop()) {
    if (typeof value === 'string') add(values, value);
    else if (typeof value === 'number') add(values, String(value));
    else if (Array.isArray(value)) for (const item of value as unknown[]) pending.push(item);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        add(keys, key);
        pending.push(item);
      }
    }
  }
  return { values, keys };
}
