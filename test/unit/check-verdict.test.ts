import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REASON_MAX_CHARS, WITHHELD_REASON, bounded, lastLine, withoutParameters } from '../../src/machines/check-reason.js';
import { verdictOf } from '../../src/starter/task-unit-starter.js';
import type { UnitSnapshot } from '../../src/systemd/client.js';

const unit = (result: string, execMainCode: number, execMainStatus: number): UnitSnapshot => ({
  unitName: 'tessia-check-0123456789abcdef.service',
  loadState: 'loaded',
  activeState: 'failed',
  subState: 'failed',
  result,
  execMainCode,
  execMainStatus,
  invocationId: '',
  activeEnterTimestamp: 0n,
  inactiveEnterTimestamp: 0n,
  execMainExitTimestamp: 0n,
  cpuUsageNsec: null,
});
const CLD_EXITED = 1;
const CLD_KILLED = 2;

describe("a check's reason", () => {
  it('is the last line with text, without control characters.', () => {
    assert.equal(lastLine('Traceback (most recent call last):\n  File "x", line 1\nValueError: bad target\n\n'), 'ValueError: bad target');
    assert.equal(lastLine('a\u001b[31mred\u0007\r\n'), 'a [31mred');
    assert.equal(lastLine(''), '');
  });

  it(`is cut to ${REASON_MAX_CHARS} characters.`, () => {
    const line = bounded(lastLine('x'.repeat(10_000)));
    assert.equal(line.length, REASON_MAX_CHARS);
    assert.ok(line.endsWith('…'));
  });

  it('loses every word of the values of the parameters, in any case, numbers included, at any depth.', () => {
    const parameters = { password: 's3cr3t-Value', hosts: ['lpar01', 'guest99'], port: 31337, script: 'ECHO hello world' };
    const reason = 'ValueError: host LPAR01 refused S3CR3T value on port 31337 (password wrong); ECHO at line 2: hello';
    assert.equal(withoutParameters(reason, parameters), 'ValueError: host … refused … … on port … (password wrong); … at line 2: …');
    let deep: unknown = 'buried-treasure';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.equal(withoutParameters('no buried treasure here', deep), 'no … … here');
    const wide = Array.from({ length: 200_000 }, (_, index) => `w${index}`);
    assert.equal(withoutParameters('w199999 and w5 are gone', wide), '… and w5 are gone');
  });

  it('loses a token cut short, one glued to an escape or an underscore, and a long piece inside a word.', () => {
    const token = `S3cretToken${'x'.repeat(600)}`;
    const cut = bounded(`SyntaxError: Invalid command ${token}`);
    assert.equal(withoutParameters(cut, [`echo ${token}`]), WITHHELD_REASON, 'a token cut short');
    assert.equal(withoutParameters("ValueError: bad line 'abc\\nhunter22'", ['abc\nhunter22']), "ValueError: bad line '…\\n…'");
    assert.equal(withoutParameters("KeyError: 'pass_word_hunter'", { user: 'hunter' }), "KeyError: 'pass_word_…'");
    assert.equal(withoutParameters('no such host xlpar0142y', { host: 'lpar0142' }), 'no such host x…y');
  });

  it('withholds a reason that still quotes a value: escapes undone, case and compatibility forms folded, pieces joined.', () => {
    const key = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\nbm9uZQAAAAAAAAABAAAAMw';
    const quoted = `ValueError: invalid key '-----BEGIN KEY-----\\n${key.split('\n').join('\\n')}'`;
    assert.equal(withoutParameters(quoted, { key: `-----BEGIN KEY-----\n${key}` }), "ValueError: invalid … '-----… …-----\\n…\\n…'");
    assert.equal(withoutParameters('bad password Xy.9z-Q7!', { password: 'Xy.9z-Q7!' }), WITHHELD_REASON);
    assert.equal(withoutParameters('bad city "Z\\u00fcrichGeheim"', ['ZürichGeheim']), WITHHELD_REASON);
    assert.equal(withoutParameters('bad city İSTANBULPASS', ['istanbulpass']), WITHHELD_REASON);
    assert.equal(withoutParameters('STRASSE unknown', ['straße']), WITHHELD_REASON);
    assert.equal(withoutParameters('ｈｕｎｔｅｒ２２ refused', ['hunter22']), WITHHELD_REASON);
    assert.equal(withoutParameters('refused correcthorsebatt…', ['correct horse battery staple']), WITHHELD_REASON);
  });

  it('withholds a short word glued to an escape letter, and secrets spelled as UTF-8 or octal byte escapes.', () => {
    assert.equal(withoutParameters("ValueError: bad credentials '…\\nPw5!x'", { credentials: 'admin\nPw5!x' }), WITHHELD_REASON);
    const bytes = [...Buffer.from('пароль')].map((byte) => `\\x${byte.toString(16)}`).join('');
    assert.equal(withoutParameters(`ValueError: b'${bytes}'`, ['пароль']), WITHHELD_REASON);
    const octal = [...Buffer.from('пароль')].map((byte) => `\\${byte.toString(8)}`).join('');
    assert.equal(withoutParameters(`bad $'${octal}'`, ['пароль']), WITHHELD_REASON);
  });

  it('keeps a key name only when it is no word of a value.', () => {
    assert.equal(withoutParameters('hunter2 is wrong', { password: 'hunter2', hunter2: 1 }), '… is wrong');
  });

  it('keeps ordinary words that merely contain a short word of the values.', () => {
    assert.equal(withoutParameters('refused because of the mode', ['use shared lpar']), 'refused because of the mode');
  });

  it("keeps the names of the parameters' keys: they are the machine's vocabulary.", () => {
    const parameters = { from: 0, message: 'go there' };
    assert.equal(
      withoutParameters('"from" must be a whole number from 1 to 3600', parameters),
      '"from" must be a whole number from 1 to 3600',
    );
  });

  it('keeps short words and everything when the parameters have no words.', () => {
    assert.equal(withoutParameters('line 2: bad', ['a 2']), 'line 2: bad');
    assert.equal(withoutParameters('SyntaxError: Invalid command', null), 'SyntaxError: Invalid command');
  });

  it("hides the original echo machine's quoted command.", () => {
    const reason = 'SyntaxError: Invalid command frobnicate (EchoMachine, line 1)';
    assert.equal(withoutParameters(reason, ['frobnicate now']), 'SyntaxError: Invalid command … (EchoMachine, line 1)');
  });
});

describe("a check unit's verdict", () => {
  it('is valid when the start job is done with exit status 0.', () => {
    assert.deepEqual(verdictOf('done', unit('success', CLD_EXITED, 0), ''), { outcome: 'valid' });
  });

  it('is invalid for exit statuses 1 to 124 (a success for systemd: SuccessExitStatus=), with the reason or the status.', () => {
    assert.deepEqual(verdictOf('done', unit('success', CLD_EXITED, 1), 'ValueError: no'), {
      outcome: 'invalid',
      reason: 'ValueError: no',
    });
    assert.deepEqual(verdictOf('done', unit('success', CLD_EXITED, 124), ''), {
      outcome: 'invalid',
      reason: "rejected by the machine's check (exit status 124)",
    });
  });

  it('is broken for 125 and above (the check could not run: exec failures 203 too), and for signals.', () => {
    assert.deepEqual(verdictOf('failed', unit('exit-code', CLD_EXITED, 125), "No module named 'zhmcclient'"), {
      outcome: 'broken',
      reason: "the check could not run (exit status 125): No module named 'zhmcclient'",
    });
    assert.deepEqual(verdictOf('failed', unit('exit-code', CLD_EXITED, 203), ''), {
      outcome: 'broken',
      reason: 'the check could not run (exit status 203, EXEC: the program is missing or not executable)',
    });
    assert.deepEqual(verdictOf('failed', unit('signal', CLD_KILLED, 11), ''), {
      outcome: 'broken',
      reason: 'the check was killed by signal 11',
    });
    assert.equal(verdictOf('failed', unit('resources', 0, 0), '').outcome, 'broken');
    assert.equal(verdictOf('failed', null, '').outcome, 'broken');
    assert.equal(verdictOf('done', null, '').outcome, 'broken', 'a verdict not read is no verdict');
  });

  it('is a timeout when the job or the unit says so.', () => {
    assert.equal(verdictOf('timeout', unit('timeout', CLD_KILLED, 15), '').outcome, 'timeout');
    assert.equal(verdictOf('failed', unit('timeout', CLD_KILLED, 15), '').outcome, 'timeout');
  });
});
