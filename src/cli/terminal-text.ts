/**
 * Task text made safe for a terminal. A task writes what it likes to its journal, and a terminal
 * obeys what it is sent: escape sequences can move the cursor, rewrite lines already printed, set
 * the window title, write to the clipboard (OSC 52) or, on some terminals, answer with input. What
 * the CLI prints of a task is therefore cleaned of every escape sequence and control character
 * but tab and newline; the CLI's own colours are added after.
 */

/**
 * ECMA-48 sequences, 7-bit (ESC …) and 8-bit (C1) forms: CSI (`ESC [` / U+009B … final byte),
 * OSC, DCS, SOS, PM and APC strings (up to BEL or ST, or the end of the text), and the other
 * two- and three-character escapes.
 */
const SEQUENCES = new RegExp(
  [
    '(?:\\x1b\\[|\\x9b)[\\x30-\\x3f]*[\\x20-\\x2f]*[\\x40-\\x7e]?', // CSI: parameters, intermediates, final
    '(?:\\x1b[\\]PX^_]|[\\x90\\x98\\x9d\\x9e\\x9f])[\\s\\S]*?(?:\\x07|\\x1b\\\\|\\x9c|$)', // OSC, DCS, SOS, PM, APC … BEL or ST
    '\\x1b[\\x20-\\x2f]*[\\x30-\\x7e]?', // other escapes (nF, Fp, Fe, Fs), or a lone ESC
  ].join('|'),
  'g',
);

/** C0 controls but tab and newline, DEL, and C1 controls. */
// eslint-disable-next-line no-control-regex -- control characters are what this removes
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** The text without escape sequences or control characters, tab and newline kept. */
export function terminalSafe(text: string): string {
  return text.replace(SEQUENCES, '').replace(CONTROLS, '');
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL and the C1 controls
 * (U+0080–U+009F; U+009B is CSI) as they are. Still the same JSON value.
 */
export function terminalSafeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    /[\x7f-\x9f]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
