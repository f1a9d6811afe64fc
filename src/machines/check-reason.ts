/**
 * A check's reason, as the client gets it: one line, bounded, with nothing of the request's
 * parameters in it. A check is the admin's program and may quote what it rejects — whole, cut short,
 * glued to an escape (`'\nb3BlbnNz…'`), as bytes (`b'\xd0\xbf…'`), upper-cased — and the runner never
 * echoes parameters into an answer or a log. Two passes:
 *  1. what is plainly the parameters' is replaced by "…": a word (letters and digits, 3 or more) that
 *     is a word of a value, any case; a word of a value of 6 characters or more, wherever it is;
 *  2. what is left, its escapes undone and its case and compatibility forms folded, is compared with
 *     the values: if a word of it is a word of a value, or 6 letters or digits in a row of it are 6 in
 *     a row of a value, it still quotes the parameters somehow, and the client gets none of it.
 * Left through: pieces of 5 letters or digits or fewer between other characters, and the names of
 * keys (below).
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
  if (reason === '') return reason;
  const { values, words, keys } = textsOf(parameters);
  if (values.length === 0) return reason;
  const scrubbed = scrubbedOf(reason, words, keys);
  return quotesValues(scrubbed, values, words) ? WITHHELD_REASON : scrubbed;
}

function scrubbedOf(reason: string, words: Set<string>, keys: Set<string>): string {
  const isKey = (word: string) => keys.has(word) && !words.has(word);
  // Long words of the values wherever they appear, longest first; only those that can be there
  // (their first 6 characters are 6 in a row of the reason): a value may have tens of thousands.
  const grams = gramsOf(reason.toLowerCase());
  const pieces = [...words]
    .filter((word) => word.length >= MIN_PIECE && grams.has(word.slice(0, MIN_PIECE)))
    .sort((a, b) => b.length - a.length);
  let scrubbed = reason;
  for (const piece of pieces) scrubbed = replaceAll(scrubbed, piece, REDACTED);
  return scrubbed.replace(WORD, (word) => {
    const lower = word.toLowerCase();
    return word.length >= MIN_WORD && !isKey(lower) && words.has(lower) ? REDACTED : word;
  });
}

/**
 * Whether what is left still quotes a value: with escapes undone and case and compatibility forms
 * folded, a word of it is a word of a value, or 6 letters or digits in a row of it are 6 in a row
 * of a value (spaces and punctuation between them ignored).
 */
function quotesValues(reason: string, values: string[], words: Set<string>): boolean {
  const plain = fold(unescaped(reason));
  const valueWords = new Set([...words].map(fold));
  for (const [word] of plain.matchAll(WORD)) if (word.length >= MIN_WORD && valueWords.has(word)) return true;
  const grams = new Set<string>();
  for (const run of skeletonOf(plain).split(RUN_BREAK)) for (const gram of gramsOf(run)) grams.add(gram);
  if (grams.size === 0) return false;
  // One pass over all the values (a separator between two: no run across them).
  const skeleton = skeletonOf(fold(values.join(REDACTED)));
  for (let at = 0; at + MIN_PIECE <= skeleton.length; at++) if (grams.has(skeleton.slice(at, at + MIN_PIECE))) return true;
  return false;
}

function gramsOf(text: string): Set<string> {
  const grams = new Set<string>();
  for (let at = 0; at + MIN_PIECE <= text.length; at++) grams.add(text.slice(at, at + MIN_PIECE));
  return grams;
}

/** Compatibility forms and case folded (NFKC, lower case, ß as ss). */
function fold(text: string): string {
  return text.normalize('NFKC').toLowerCase().replaceAll('ß', 'ss');
}

/** Letters and digits only; "…" (a replaced part) breaks a run, as a space or a quote does not. */
function skeletonOf(folded: string): string {
  return folded
    .split(REDACTED)
    .map((part) => part.replace(/[^\p{L}\p{N}]/gu, ''))
    .join(RUN_BREAK);
}

/**
 * The usual escapes of Python's repr, JSON, C and shells undone: `\n`, `\t`, `\uHHHH`, …, and runs of
 * byte escapes (`\xHH`, octal `\NNN`) as the UTF-8 they spell (Latin-1 when they are not UTF-8).
 */
function unescaped(text: string): string {
  const ESCAPE = /\\(?:x([0-9a-fA-F]{2})|([0-7]{1,3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([ntrfvab'"\\]))/g;
  let result = '';
  let bytes: number[] = [];
  let from = 0;
  const flushBytes = () => {
    if (bytes.length === 0) return;
    const buffer = Buffer.from(bytes);
    const utf8 = buffer.toString('utf8');
    result += utf8.includes('\ufffd') ? buffer.toString('latin1') : utf8;
    bytes = [];
  };
  for (const match of text.matchAll(ESCAPE)) {
    const [whole, hex2, octal, hex4, hex8, plain] = match;
    if (match.index !== from) flushBytes();
    result += text.slice(from, match.index);
    from = match.index + whole.length;
    if (hex2 !== undefined || octal !== undefined) {
      bytes.push(Number.parseInt(hex2 ?? octal ?? '0', hex2 !== undefined ? 16 : 8) & 0xff);
      continue;
    }
    flushBytes();
    const code = hex4 ?? hex8;
    if (code !== undefined) {
      const point = Number.parseInt(code, 16);
      result += point <= 0x10ffff ? String.fromCodePoint(point) : ' ';
    } else result += plain === '\\' || plain === "'" || plain === '"' ? plain : ' ';
  }
  flushBytes();
  return result + text.slice(from);
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
  const keyNames: string[] = [];
  // Iterative: parameters nest as deep as limits.maxJsonDepth allows.
  const pending: unknown[] = [parameters];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string' || typeof value === 'number') values.push(String(value));
    else if (Array.isArray(value)) for (const item of value as unknown[]) pending.push(item);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        keyNames.push(key);
        pending.push(item);
      }
    }
  }
  // One pass of the word pattern over each kind, not one per value (there may be 100 000 of them).
  return { values, words: wordsOf(values.join('\n')), keys: wordsOf(keyNames.join('\n')) };
}

function wordsOf(text: string): Set<string> {
  const words = new Set<string>();
  for (const [word] of text.matchAll(WORD)) if (word.length >= MIN_WORD) words.add(word.toLowerCase());
  return words;
}
