/**
 * A reader of journalctl's JSON lines: one flat object whose values are strings, arrays (of byte
 * values, or of several values of a field) or null.
 *
 * journalctl prints an entry's fields in the order of a hash table (systemd's draw new random keys
 * as they grow), a different order for nearly every entry (2005 orders in 2005 entries of one task,
 * measured here). JSON.parse gives each such
 * entry an object of a shape of its own, and V8 builds the hidden classes for each: ~26 µs an entry,
 * most of the CPU of serving a task's log (bench/profile.ts, `TESSIA_BENCH=profile-logs`). Read here
 * into an object without shapes (a prototype-less dictionary), with JSON.parse only for the values
 * that need it (escapes, arrays). Anything else is left to JSON.parse.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/**
 * The object of a JSON line, as JSON.parse would give it (but without a prototype: a key
 * `__proto__` is a field like any other); undefined when the line is not one JSON object. A string
 * value without escapes is a slice of `line`: it keeps the line's memory while it is kept.
 */
export function parseFlatJsonObject(line: string): Record<string, unknown> | undefined {
  const fast = scan(line);
  if (fast !== null) return fast;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return Object.assign(Object.create(null) as Record<string, unknown>, parsed);
}

// eslint-disable-next-line no-control-regex -- what JSON does not allow raw in a string
const RAW_CONTROL = /[\u0000-\u001f]/;

/** null: not the shape journalctl prints (JSON.parse decides). */
function scan(text: string): Record<string, unknown> | null {
  // Outside strings only whitespace, which journalctl does not print: any is left to JSON.parse.
  if (RAW_CONTROL.test(text)) return null;
  const record = Object.create(null) as Record<string, unknown>;
  let at = skipSpace(text, 0);
  if (text.charCodeAt(at) !== OPEN_BRACE) return null;
  at = skipSpace(text, at + 1);
  if (text.charCodeAt(at) === CLOSE_BRACE) return skipSpace(text, at + 1) === text.length ? record : null;
  for (;;) {
    if (text.charCodeAt(at) !== QUOTE) return null;
    const keyEnd = stringEnd(text, at);
    if (keyEnd < 0) return null;
    const key = stringAt(text, at, keyEnd);
    if (key === null) return null;
    at = skipSpace(text, keyEnd + 1);
    if (text.charCodeAt(at) !== COLON) return null;
    at = skipSpace(text, at + 1);
    const first = text.charCodeAt(at);
    if (first === QUOTE) {
      const end = stringEnd(text, at);
      if (end < 0) return null;
      const value = stringAt(text, at, end);
      if (value === null) return null;
      record[key] = value;
      at = end + 1;
    } else if (first === OPEN_BRACKET) {
      const end = arrayEnd(text, at);
      if (end < 0) return null;
      try {
        record[key] = JSON.parse(text.slice(at, end + 1));
      } catch {
        return null;
      }
      at = end + 1;
    } else if (text.startsWith('null', at)) {
      record[key] = null;
      at += 4;
    } else {
      return null;
    }
    at = skipSpace(text, at);
    const next = text.charCodeAt(at);
    if (next === COMMA) at = skipSpace(text, at + 1);
    else if (next === CLOSE_BRACE) return skipSpace(text, at + 1) === text.length ? record : null;
    else return null;
  }
}

function skipSpace(text: string, at: number): number {
  let position = at;
  for (;;) {
    const code = text.charCodeAt(position);
    // space, tab, line feed, carriage return: JSON's whitespace
    if (code !== 32 && code !== 9 && code !== 10 && code !== 13) return position;
    position += 1;
  }
}

/** The index of the quote that closes the string opening at `start`; -1 if none. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** The string between the quotes at `start` and `end`, its escapes read by JSON.parse; null if they are not JSON's. */
function stringAt(text: string, start: number, end: number): string | null {
  const inner = text.slice(start + 1, end);
  if (!inner.includes('\\')) return inner;
  try {
    return JSON.parse(text.slice(start, end + 1)) as string;
  } catch {
    return null;
  }
}

/** The index of the bracket that closes the array opening at `start`; -1 if none. */
function arrayEnd(text: string, start: number): number {
  let depth = 0;
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      at = stringEnd(text, at);
      if (at < 0) return -1;
    } else if (code === OPEN_BRACKET) depth += 1;
    else if (code === CLOSE_BRACKET) {
      depth -= 1;
      if (depth === 0) return at;
    }
  }
  return -1;
}
