import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { terminalSafe, terminalSafeJson } from '../../src/cli/terminal-text.js';

describe('task text made safe for a terminal', () => {
  const cases: [string, string, string][] = [
    ['plain text, tab and newline kept', 'a\tb\nc ünïcødé 😀', 'a\tb\nc ünïcødé 😀'],
    ['a colour (CSI … m)', 'red \x1b[1;31malert\x1b[0m', 'red alert'],
    ['clearing the screen and moving the cursor', '\x1b[2J\x1b[H\x1b[10;20Hhere\x1b[K', 'here'],
    ['a private-mode CSI', '\x1b[?1049hswitched\x1b[?25l', 'switched'],
    ['a window title (OSC … BEL)', '\x1b]0;pwned\x07title', 'title'],
    ['the clipboard (OSC 52 … ST)', '\x1b]52;c;ZWNobyBwd25lZA==\x1b\\after', 'after'],
    ['a hyperlink (OSC 8)', '\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\', 'click'],
    ['a DCS string', 'x\x1bPq#0;2;0;0;0\x1b\\y', 'xy'],
    ['an unterminated OSC swallows the rest', 'ok \x1b]0;never ends', 'ok '],
    ['8-bit CSI and OSC', 'a\x9b31mb\x9d0;t\x9cc', 'abc'],
    ['two-character escapes and a lone ESC', '\x1bcreset\x1b7saved\x1b(Bcharset\x1b', 'resetsavedcharset'],
    ['carriage return, backspace, bell, NUL, DEL', 'over\rwrite\b\x07\x00\x7f!', 'overwrite!'],
    ['C1 controls', 'a\x85b\x8ec', 'abc'],
  ];
  for (const [what, input, expected] of cases) {
    it(`${what}.`, () => {
      assert.equal(terminalSafe(input), expected);
    });
  }

  it('leaves no control character but tab and newline in any text.', () => {
    const all = Array.from({ length: 0x200 }, (_, code) => String.fromCharCode(code)).join('');
    const cleaned = terminalSafe(`${all}\x1b[31m${all}`);
    // eslint-disable-next-line no-control-regex -- what must be gone
    assert.doesNotMatch(cleaned, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    assert.ok(cleaned.includes('\t') && cleaned.includes('\n') && cleaned.includes('A'));
  });

  it('escapes DEL and C1 controls in JSON, which stays the same value.', () => {
    const value = { message: 'a\x9b2Jb\x7f\x1b[31m' };
    const json = terminalSafeJson(value);
    // eslint-disable-next-line no-control-regex -- what must be escaped
    assert.doesNotMatch(json, /[\x00-\x1f\x7f-\x9f]/);
    assert.deepEqual(JSON.parse(json), value);
  });
});
