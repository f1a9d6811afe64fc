/**
 * A check's reason, as the client gets it: one line, bounded, with nothing of the request's
 * parameters in it. A check is the admin's program and may quote what it rejects — whole, cut short,
 * glued to an escape (`'\nb3BlbnNz…'`), upper-cased — and the runner never echoes parameters into an
 * answer or a log. Two passes:
 *  1. what is plainly the parameters' is replaced by "…": a word (letters and digits, 3 or more) that
 *     is a word of a value, any case; a piece of a value of 6 characters or more, wherever it is;
 *     a word of 6 or more that appears inside a value (a token cut short);
 *  2. what is left is compared with the values by their letters and digits alone, after undoing
 *     escapes and folding case and compatibility forms: if 6 of them in a row are also 6 in a row of
 *     a value, the reason still quotes the parameters somehow, and the client gets none of it.
 * The names of the parameters' keys are the machine's vocabulary ('"from" must be a number'): a word
 * that names a key, and is no word of a value, is kept.
 */

/** Longest reason kept, in characters. */
export const REASON_MAX_CHARS = 500;
/** Words shorter than this are kept: a line number or "a" is not the parameters. */
const MIN_WORD = 3;
/** Shorter pieces would match inside ordinary words ("use" in "because"). */
const MIN_PIECE = 6;
const WORD = /[\p{L}\p{N}]+/gu;
const REDACTED = '…';
/** Between two runs of letters and digits that must not be read as one. */
const RUN_BREAK = ' ';
/** What a client gets instead of a reason that still quotes the parameters after the first pass. */
export const WITHHELD_REASON = 'its reason quoted the parameters and is withheld';

/** The last line with text in what a check wrote to stderr, without control or format characters. */
export function lastLine(output: string): string {
  const lines = output.split(/\r?\n/).map((line) => line.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ').trim());
  return lines.reverse().find((line) => line !== '') ?? '';
}

/** `reason` at most REASON_MAX_CHARS long, cut with an ellipsis. */
export function bounded(reason: string): string {
  return reason.length > REASON_MAX_CHARS ? `${reason.slice(0, REASON_MAX_CHARS - 1)}…` : reason;
}

/** `reason` without what comes from the values of `parameters` (see above); WITHHELD_REASON when that fails. */
export function withoutParameters(reason: string, parameters: unknown): string {
  const { values, words, keys } = textsOf(parameters);
  if (values.length === 0) return reason;
  const scrubbed = scrubbedOf(reason, values, words, keys);
  return quotesValues(scrubbed, values) ? WITHHELD_REASON : scrubbed;
}

function scrubbedOf(reason: string, values: string[], words: Set<string>, keys: Set<string>): string {
  const haystack = values.join('\u0000').toLowerCase();
  const isKey = (word: string) => keys.has(word) && !words.has(word);
  // Long words of the values, longest first, wherever they appear.
  const pieces = [...words].filter((word) => word.length >= MIN_PIECE).sort((a, b) => b.length - a.length);
  let scrubbed = reason;
  for (const piece of pieces) scrubbed = replaceAll(scrubbed, piece, REDACTED);
  return scrubbed.replace(WORD, (word) => {
    const lower = word.toLowerCase();
    if (word.length < MIN_WORD || isKey(lower)) return word;
    if (words.has(lower)) return REDACTED;
    return word.length >= MIN_PIECE && haystack.includes(lower) ? REDACTED : word;
  });
}

/** Whether 6 letters or digits in a row of `reason` (escapes undone, folded) are 6 in a row of a value. */
function quotesValues(reason: string, values: string[]): boolean {
  const grams = new Set<string>();
  for (const run of skeletonOf(unescaped(reason)).split(RUN_BREAK)) {
    for (let at = 0; at + MIN_PIECE <= run.length; at++) grams.add(run.slice(at, at + MIN_PIECE));
  }
  if (grams.size === 0) return false;
  for (const value of values) {
    const skeleton = skeletonOf(value);
    for (let at = 0; at + MIN_PIECE <= skeleton.length; at++) if (grams.has(skeleton.slice(at, at + MIN_PIECE))) return true;
  }
  return false;
}

/** Letters and digits only, compatibility forms and case folded; "…" (a replaced part) breaks a run, as a space does not. */
function skeletonOf(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replaceAll('ß', 'ss')
    .split(REDACTED)
    .map((part) => part.replace(/[^\p{L}\p{N}]/gu, ''))
    .join(RUN_BREAK);
}

/** The usual escapes of Python's repr, JSON and C strings, undone: `\n`, `\t`, `\xHH`, `\uHHHH`, … */
function unescaped(text: string): string {
  const ESCAPE = /\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([ntrfvab0'"\\]))/g;
  return text.replace(ESCAPE, (_match: string, hex2?: string, hex4?: string, hex8?: string, plain?: string) => {
    const code = hex2 ?? hex4 ?? hex8;
    if (code !== undefined) {
      const point = Number.parseInt(code, 16);
      return point <= 0x10ffff ? String.fromCodePoint(point) : ' ';
    }
    return plain === '\\' || plain === "'" || plain === '"' ? plain : ' ';
  });
}

/** Case-insensitive: every occurrence of `piece` (lower case) in `text`. */
function replaceAll(text: string, piece: string, by: string): string {
  const lower = text.toLowerCase();
  // toLowerCase keeps the length of most text; where it does not (a few letters), work on the lowered text.
  const source = lower.length === text.length ? text : lower;
  let result = '';
  let from = 0;
  for (let at = lower.indexOf(piece); at !== -1; at = lower.indexOf(piece, from)) {
    result += source.slice(from, at) + by;
    from = at + piece.length;
  }
  return result + source.slice(from);
}

function textsOf(parameters: unknown): { values: string[]; words: Set<string>; keys: Set<string> } {
  const values: string[] = [];
  const words = new Set<string>();
  const keys = new Set<string>();
  const addWords = (into: Set<string>, text: string) => {
    for (const [word] of text.matchAll(WORD)) if (word.length >= MIN_WORD) into.add(word.toLowerCase());
  };
  // Iterative: parameters nest as deep as limits.maxJsonDepth allows.
  const pending: unknown[] = [parameters];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string' || typeof value === 'number') {
      values.push(String(value));
      addWords(words, String(value));
    } else if (Array.isArray(value)) {
      for (const item of value as unknown[]) pending.push(item);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        addWords(keys, key);
        pending.push(item);
      }
    }
  }
  return { values, words, keys };
}
