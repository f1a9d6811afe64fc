import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EchoSyntaxError, LOG_LEVELS, parseEchoScript, type EchoScript } from '../../src/machines/echo/language.js';

/** Asserts that parsing `parameters` fails with an EchoSyntaxError at `line` saying `problem`. */
function assertSyntaxError(parameters: unknown, line: number, problem: string): void {
  assert.throws(
    () => parseEchoScript(parameters),
    (error: unknown) => {
      assert.ok(error instanceof EchoSyntaxError, `expected an EchoSyntaxError, got ${String(error)}`);
      assert.equal(error.name, 'EchoSyntaxError');
      assert.equal(error.line, line);
      assert.equal(error.problem, problem);
      assert.equal(error.message, `line ${line}: ${problem}`);
      assert.ok(error.message.startsWith(`line ${line}: `));
      return true;
    },
  );
}

function emptyScript(): EchoScript {
  return { resources: { shared: [], exclusive: [] }, commands: [], cleanup: [] };
}

describe('parseEchoScript keywords', () => {
  it('parses ECHO into an echo command with its text and line number.', () => {
    assert.deepEqual(parseEchoScript(['ECHO hello world']), {
      ...emptyScript(),
      commands: [{ kind: 'echo', line: 1, text: 'hello world' }],
    });
  });

  it('collapses runs of whitespace between ECHO words into single spaces and trims the ends.', () => {
    const script = parseEchoScript(['   ECHO \t hello    big\t\tworld   ']);
    assert.deepEqual(script.commands, [{ kind: 'echo', line: 1, text: 'hello big world' }]);
  });

  const sleeps: { argument: string; seconds: number }[] = [
    { argument: '0', seconds: 0 },
    { argument: '5', seconds: 5 },
    { argument: '0.25', seconds: 0.25 },
    { argument: '.5', seconds: 0.5 },
    { argument: '3.', seconds: 3 },
    { argument: '+2', seconds: 2 },
    { argument: '1e2', seconds: 100 },
    { argument: '-0', seconds: -0 },
  ];
  for (const { argument, seconds } of sleeps) {
    it(`parses SLEEP ${argument} into a sleep of ${seconds} seconds.`, () => {
      assert.deepEqual(parseEchoScript([`SLEEP ${argument}`]).commands, [{ kind: 'sleep', line: 1, seconds }]);
    });
  }

  for (const level of LOG_LEVELS) {
    it(`parses LOG ${level} into a log command at level ${level} with the rest of the line as text.`, () => {
      assert.deepEqual(parseEchoScript([`LOG ${level} something   happened here`]).commands, [
        { kind: 'log', line: 1, level, text: 'something happened here' },
      ]);
    });
  }

  it('lists exactly the five tessia log levels.', () => {
    assert.deepEqual([...LOG_LEVELS], ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG']);
  });

  it('normalises a lowercase LOG level to uppercase.', () => {
    assert.deepEqual(parseEchoScript(['log warning disk almost full']).commands, [
      { kind: 'log', line: 1, level: 'WARNING', text: 'disk almost full' },
    ]);
  });

  it('collects USE SHARED and USE EXCLUSIVE resources, several per line, without adding commands.', () => {
    const script = parseEchoScript(['USE SHARED lpar01 lpar02', 'USE EXCLUSIVE cpc01', 'use shared lpar03', 'Use Exclusive cpc02 cpc03']);
    assert.deepEqual(script.resources, { shared: ['lpar01', 'lpar02', 'lpar03'], exclusive: ['cpc01', 'cpc02', 'cpc03'] });
    assert.deepEqual(script.commands, []);
    assert.deepEqual(script.cleanup, []);
  });

  const returns: { argument: string; value: number }[] = [
    { argument: '0', value: 0 },
    { argument: '7', value: 7 },
    { argument: '255', value: 255 },
    { argument: '+3', value: 3 },
    { argument: '007', value: 7 },
  ];
  for (const { argument, value } of returns) {
    it(`parses RETURN ${argument} into a return command with value ${value}.`, () => {
      assert.deepEqual(parseEchoScript([`RETURN ${argument}`]).commands, [{ kind: 'return', line: 1, value }]);
    });
  }

  it('parses RAISE into a raise command.', () => {
    assert.deepEqual(parseEchoScript(['RAISE']).commands, [{ kind: 'raise', line: 1 }]);
  });

  it('sends every command after CLEANUP to the cleanup section and keeps earlier ones as commands.', () => {
    const script = parseEchoScript([
      'ECHO working',
      'SLEEP 10',
      'CLEANUP',
      'ECHO cleaning up',
      'LOG INFO cleaned',
      'SLEEP 1',
      'RETURN 3',
      'RAISE',
    ]);
    assert.deepEqual(script.commands, [
      { kind: 'echo', line: 1, text: 'working' },
      { kind: 'sleep', line: 2, seconds: 10 },
    ]);
    assert.deepEqual(script.cleanup, [
      { kind: 'echo', line: 4, text: 'cleaning up' },
      { kind: 'log', line: 5, level: 'INFO', text: 'cleaned' },
      { kind: 'sleep', line: 6, seconds: 1 },
      { kind: 'return', line: 7, value: 3 },
      { kind: 'raise', line: 8 },
    ]);
  });

  it('gives an empty cleanup section when CLEANUP is the last line.', () => {
    const script = parseEchoScript(['ECHO a', 'CLEANUP']);
    assert.deepEqual(script.commands, [{ kind: 'echo', line: 1, text: 'a' }]);
    assert.deepEqual(script.cleanup, []);
  });
});

describe('parseEchoScript lexical rules', () => {
  const spellings = ['ECHO', 'echo', 'Echo', 'eCHo'];
  for (const keyword of spellings) {
    it(`accepts the keyword spelled ${keyword} as ECHO.`, () => {
      assert.deepEqual(parseEchoScript([`${keyword} hi`]).commands, [{ kind: 'echo', line: 1, text: 'hi' }]);
    });
  }

  it('treats every keyword case-insensitively.', () => {
    const upper = parseEchoScript([
      'USE SHARED a',
      'USE EXCLUSIVE b',
      'ECHO x',
      'SLEEP 1',
      'LOG DEBUG y',
      'RETURN 1',
      'RAISE',
      'CLEANUP',
      'ECHO z',
    ]);
    const lower = parseEchoScript([
      'use shared a',
      'use exclusive b',
      'echo x',
      'sleep 1',
      'log debug y',
      'return 1',
      'raise',
      'cleanup',
      'echo z',
    ]);
    assert.deepEqual(lower, upper);
  });

  it('keeps the case of ECHO text and resource names as written.', () => {
    const script = parseEchoScript(['echo Hello WORLD', 'use shared LPAR01']);
    assert.deepEqual(script.commands, [{ kind: 'echo', line: 1, text: 'Hello WORLD' }]);
    assert.deepEqual(script.resources.shared, ['LPAR01']);
  });

  it('skips blank lines, whitespace-only lines and comment lines but keeps counting them for line numbers.', () => {
    const script = parseEchoScript(['', '# a comment', '   ', '\t', '   # an indented comment', 'ECHO hi', '#ECHO not run']);
    assert.deepEqual(script, { ...emptyScript(), commands: [{ kind: 'echo', line: 6, text: 'hi' }] });
  });

  it('drops everything after a # on a line, including inside ECHO text.', () => {
    const script = parseEchoScript(['ECHO before # after', 'SLEEP 2 # two seconds', 'RAISE#now']);
    assert.deepEqual(script.commands, [
      { kind: 'echo', line: 1, text: 'before' },
      { kind: 'sleep', line: 2, seconds: 2 },
      { kind: 'raise', line: 3 },
    ]);
  });

  it('returns an empty script for an empty list, an empty string and a comments-only script.', () => {
    assert.deepEqual(parseEchoScript([]), emptyScript());
    assert.deepEqual(parseEchoScript(''), emptyScript());
    assert.deepEqual(parseEchoScript('# nothing\n\n# to do\n'), emptyScript());
  });

  it('gives the same script for one multi-line string as for the list of its lines.', () => {
    const lines = [
      '# setup',
      'USE SHARED lpar01',
      'ECHO hello   world',
      '',
      'SLEEP 0.5',
      'LOG ERROR oops',
      'RETURN 4',
      'CLEANUP',
      'ECHO bye',
    ];
    const fromList = parseEchoScript(lines);
    assert.deepEqual(parseEchoScript(lines.join('\n')), fromList);
    assert.equal(fromList.commands[0]?.line, 3);
    assert.equal(fromList.cleanup[0]?.line, 9);
  });

  it('accepts CRLF line endings in a multi-line string with the same line numbers as LF.', () => {
    const lines = ['ECHO one', '', 'ECHO three'];
    assert.deepEqual(parseEchoScript(lines.join('\r\n')), parseEchoScript(lines));
    assert.deepEqual(parseEchoScript(lines.join('\r\n')).commands, [
      { kind: 'echo', line: 1, text: 'one' },
      { kind: 'echo', line: 3, text: 'three' },
    ]);
  });
});

describe('parseEchoScript syntax errors', () => {
  const errors: { name: string; lines: string[]; line: number; problem: string }[] = [
    { name: 'ECHO without an argument', lines: ['ECHO'], line: 1, problem: 'ECHO expects an argument to output' },
    {
      name: 'ECHO whose only argument is a comment',
      lines: ['ECHO # nothing'],
      line: 1,
      problem: 'ECHO expects an argument to output',
    },
    { name: 'SLEEP with no argument', lines: ['SLEEP'], line: 1, problem: 'SLEEP expects 1 argument (0 provided)' },
    { name: 'SLEEP with two arguments', lines: ['SLEEP 1 2'], line: 1, problem: 'SLEEP expects 1 argument (2 provided)' },
    { name: 'SLEEP with a word', lines: ['SLEEP abc'], line: 1, problem: 'SLEEP argument must be a number' },
    { name: 'SLEEP with a unit suffix', lines: ['SLEEP 5s'], line: 1, problem: 'SLEEP argument must be a number' },
    { name: 'SLEEP with Infinity', lines: ['SLEEP Infinity'], line: 1, problem: 'SLEEP argument must be a number' },
    { name: 'SLEEP with hex', lines: ['SLEEP 0x10'], line: 1, problem: 'SLEEP argument must be a number' },
    { name: 'SLEEP with a lone dot', lines: ['SLEEP .'], line: 1, problem: 'SLEEP argument must be a number' },
    { name: 'SLEEP with a negative number', lines: ['SLEEP -1'], line: 1, problem: 'SLEEP argument must not be negative' },
    {
      name: 'SLEEP with a negative fraction',
      lines: ['SLEEP -0.5'],
      line: 1,
      problem: 'SLEEP argument must not be negative',
    },
    { name: 'RETURN with no argument', lines: ['RETURN'], line: 1, problem: 'RETURN expects 1 argument (0 provided)' },
    { name: 'RETURN with two arguments', lines: ['RETURN 1 2'], line: 1, problem: 'RETURN expects 1 argument (2 provided)' },
    { name: 'RETURN with a fraction', lines: ['RETURN 1.5'], line: 1, problem: 'RETURN argument must be an integer' },
    { name: 'RETURN with a word', lines: ['RETURN one'], line: 1, problem: 'RETURN argument must be an integer' },
    { name: 'RETURN with an exponent', lines: ['RETURN 1e2'], line: 1, problem: 'RETURN argument must be an integer' },
    { name: 'RETURN of 256', lines: ['RETURN 256'], line: 1, problem: 'RETURN argument must be between 0 and 255' },
    { name: 'RETURN of -1', lines: ['RETURN -1'], line: 1, problem: 'RETURN argument must be between 0 and 255' },
    { name: 'LOG with no argument', lines: ['LOG'], line: 1, problem: 'LOG expects 2 arguments (0 provided)' },
    { name: 'LOG with a level but no text', lines: ['LOG INFO'], line: 1, problem: 'LOG expects 2 arguments (1 provided)' },
    {
      name: 'LOG with an unknown level',
      lines: ['LOG WARN careful'],
      line: 1,
      problem: 'LOG level must be one of (CRITICAL, ERROR, WARNING, INFO, DEBUG)',
    },
    {
      name: 'LOG with a text but no level',
      lines: ['LOG hello world'],
      line: 1,
      problem: 'LOG level must be one of (CRITICAL, ERROR, WARNING, INFO, DEBUG)',
    },
    { name: 'USE with no argument', lines: ['USE'], line: 1, problem: 'USE expects 2 arguments (0 provided)' },
    { name: 'USE with a mode but no resource', lines: ['USE SHARED'], line: 1, problem: 'USE expects 2 arguments (1 provided)' },
    {
      name: 'USE with an unknown mode',
      lines: ['USE PRIVATE lpar01'],
      line: 1,
      problem: 'USE mode should be "shared" or "exclusive"',
    },
    {
      name: 'USE inside the CLEANUP section',
      lines: ['ECHO a', 'CLEANUP', 'USE SHARED lpar01'],
      line: 3,
      problem: 'USE is not allowed in cleanup section',
    },
    {
      name: 'USE without arguments inside the CLEANUP section',
      lines: ['CLEANUP', 'USE'],
      line: 2,
      problem: 'USE is not allowed in cleanup section',
    },
    {
      name: 'an unknown command',
      lines: ['PRINT hello'],
      line: 1,
      problem: 'Invalid command (expected one of ECHO, SLEEP, LOG, USE, RETURN, RAISE, CLEANUP)',
    },
    {
      name: 'an unknown lowercase command',
      lines: ['wait 5'],
      line: 1,
      problem: 'Invalid command (expected one of ECHO, SLEEP, LOG, USE, RETURN, RAISE, CLEANUP)',
    },
    {
      name: 'an unknown command in CLEANUP',
      lines: ['CLEANUP', 'EXIT'],
      line: 2,
      problem: 'Invalid command (expected one of ECHO, SLEEP, LOG, USE, RETURN, RAISE, CLEANUP)',
    },
  ];
  for (const { name, lines, line, problem } of errors) {
    it(`rejects ${name} with "${problem}" at line ${line}.`, () => {
      assertSyntaxError(lines, line, problem);
    });
  }

  it('reports the line number of the offending line after blank and comment lines.', () => {
    assertSyntaxError(['# header', '', 'ECHO ok', '   ', 'SLEEP soon'], 5, 'SLEEP argument must be a number');
  });

  it('reports the line number within a multi-line string.', () => {
    assertSyntaxError('ECHO ok\n# comment\n\nRETURN 300\n', 4, 'RETURN argument must be between 0 and 255');
  });

  it('reports the first error when a script has several.', () => {
    assertSyntaxError(
      ['ECHO ok', 'BOGUS', 'SLEEP x'],
      2,
      'Invalid command (expected one of ECHO, SLEEP, LOG, USE, RETURN, RAISE, CLEANUP)',
    );
  });

  const badItems: { name: string; item: unknown; type: string }[] = [
    { name: 'a number', item: 42, type: 'number' },
    { name: 'null', item: null, type: 'null' },
    { name: 'a boolean', item: true, type: 'boolean' },
    { name: 'an object', item: { echo: 'hi' }, type: 'object' },
    { name: 'a nested list', item: ['ECHO hi'], type: 'object' },
    { name: 'undefined', item: undefined, type: 'undefined' },
  ];
  for (const { name, item, type } of badItems) {
    it(`rejects a list item that is ${name}, naming its position as the line and its type.`, () => {
      assertSyntaxError(['ECHO first', 'ECHO second', item], 3, `expected a string, got ${type}`);
    });
  }

  it('rejects a non-string list item even when the lines before it are invalid too.', () => {
    // Every item is checked for being a string before any line is parsed.
    assertSyntaxError(['BOGUS', 7], 2, 'expected a string, got number');
  });

  const badParameters: { name: string; parameters: unknown }[] = [
    { name: 'a number', parameters: 42 },
    { name: 'an object', parameters: { lines: ['ECHO hi'] } },
    { name: 'null', parameters: null },
    { name: 'undefined', parameters: undefined },
    { name: 'a boolean', parameters: false },
  ];
  for (const { name, parameters } of badParameters) {
    it(`rejects parameters that are ${name} at line 1.`, () => {
      assertSyntaxError(parameters, 1, 'parameters must be a list of lines or a string');
    });
  }
});
