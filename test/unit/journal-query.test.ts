import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidJournalQuery, isCursor, journalctlArgs, journalctlCommand, type JournalQuery } from '../../src/journal/query.js';

const BASE = ['--output=json', '--all', '--no-pager', '--quiet'];
const TASK_MATCH = [[['TESSIA_TASK_ID', 'abcd1234']]] as const;
const CURSOR = 's=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d5e;t=62b1c2d3e4f50;x=9f8e7d6c5b4a3921';

/** journalctlArgs of a query for one task, with `extra` options. */
function argsFor(extra: Partial<JournalQuery> = {}): string[] {
  return journalctlArgs({ matches: TASK_MATCH, ...extra });
}

/** The options between the fixed prefix and the `--` separator. */
function optionsOf(args: string[]): string[] {
  return args.slice(BASE.length, args.indexOf('--'));
}

function assertInvalid(query: JournalQuery, message?: RegExp): void {
  assert.throws(
    () => journalctlArgs(query),
    (error: unknown) => {
      assert.ok(error instanceof InvalidJournalQuery, `expected an InvalidJournalQuery, got ${String(error)}`);
      if (message) assert.match(error.message, message);
      return true;
    },
  );
}

describe('journalctlArgs prefix and follow', () => {
  it('starts every argument list with the JSON output, all-fields, no-pager and quiet options.', () => {
    const queries: JournalQuery[] = [
      { matches: TASK_MATCH },
      { matches: TASK_MATCH, follow: true },
      { matches: TASK_MATCH, tail: 5, maxPriority: 3, since: new Date(0), until: new Date(1000), afterCursor: CURSOR },
    ];
    for (const query of queries) assert.deepEqual(journalctlArgs(query).slice(0, 4), BASE);
  });

  it('gives only the prefix, the separator and the match for a plain query.', () => {
    assert.deepEqual(argsFor(), [...BASE, '--', 'TESSIA_TASK_ID=abcd1234']);
  });

  it('adds --follow and --lines=all when following without a tail.', () => {
    assert.deepEqual(argsFor({ follow: true }), [...BASE, '--follow', '--lines=all', '--', 'TESSIA_TASK_ID=abcd1234']);
  });

  it('adds neither --follow nor --lines when follow is false.', () => {
    assert.deepEqual(optionsOf(argsFor({ follow: false })), []);
  });
});

describe('journalctlArgs namespace', () => {
  it("reads the default namespace's journal only when no namespace is given.", () => {
    assert.ok(!argsFor().some((arg) => arg.startsWith('--namespace')));
  });

  it("reads a namespace's journal alone, or with the default one interleaved (the + form).", () => {
    assert.deepEqual(optionsOf(argsFor({ namespace: { name: 'tessia', andDefault: false } })), ['--namespace=tessia']);
    assert.deepEqual(optionsOf(argsFor({ namespace: { name: 'tessia', andDefault: true } })), ['--namespace=+tessia']);
  });

  it('keeps the namespace when following from a cursor.', () => {
    const options = optionsOf(argsFor({ namespace: { name: 'tessia', andDefault: true }, follow: true, afterCursor: CURSOR }));
    assert.deepEqual(options, ['--namespace=+tessia', '--follow', `--cursor=${CURSOR}`, '--lines=all']);
  });

  // "*" reads every namespace, "+x" is the builder's to add, and a path would not be a namespace.
  for (const name of ['', '*', '+tessia', 'a b', '../x', 'x/y', 'tessia\n', 'a'.repeat(65)]) {
    it(`rejects the namespace name ${JSON.stringify(name)}.`, () => {
      assertInvalid({ matches: TASK_MATCH, namespace: { name, andDefault: false } }, /namespace/);
    });
  }
});

describe('journalctlArgs tail', () => {
  it('adds --lines=N for a tail without following.', () => {
    assert.deepEqual(optionsOf(argsFor({ tail: 20 })), ['--lines=20']);
  });

  it('adds --lines=N instead of --lines=all for a tail while following.', () => {
    const options = optionsOf(argsFor({ tail: 20, follow: true }));
    assert.deepEqual(options, ['--follow', '--lines=20']);
    assert.ok(!options.includes('--lines=all'));
  });

  it('accepts a tail of zero.', () => {
    assert.deepEqual(optionsOf(argsFor({ tail: 0, follow: true })), ['--follow', '--lines=0']);
  });

  it('rejects a negative tail.', () => {
    assertInvalid({ matches: TASK_MATCH, tail: -1 }, /tail/);
  });

  it('rejects a non-integer, infinite or NaN tail.', () => {
    for (const tail of [2.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assertInvalid({ matches: TASK_MATCH, tail }, /tail/);
    }
  });
});

describe('journalctlArgs cursors', () => {
  it('reads an after cursor inclusively (--cursor=; the reader drops its entry).', () => {
    assert.deepEqual(optionsOf(argsFor({ afterCursor: CURSOR })), [`--cursor=${CURSOR}`]);
  });

  it('adds --cursor= for a well-formed at cursor.', () => {
    assert.deepEqual(optionsOf(argsFor({ atCursor: CURSOR })), [`--cursor=${CURSOR}`]);
  });

  it('keeps the cursor a single argument when following from it.', () => {
    const args = argsFor({ afterCursor: CURSOR, follow: true });
    assert.deepEqual(optionsOf(args), ['--follow', `--cursor=${CURSOR}`, '--lines=all']);
  });

  const malformed: [string, string][] = [
    ['an empty string', ''],
    ['an option instead of a cursor', '--boot'],
    ['a cursor with a shell command appended', `${CURSOR};rm -rf /`],
    ['a cursor with a trailing newline', `${CURSOR}\n`],
    ['a cursor with an embedded newline and option', `${CURSOR}\n--boot`],
    ['a cursor with a leading space', ` ${CURSOR}`],
  ];
  for (const [label, cursor] of malformed) {
    it(`rejects ${label} as an after cursor.`, () => {
      assertInvalid({ matches: TASK_MATCH, afterCursor: cursor }, /cursor/);
    });
    it(`rejects ${label} as an at cursor.`, () => {
      assertInvalid({ matches: TASK_MATCH, atCursor: cursor }, /cursor/);
    });
  }

  // Cursors are opaque (sd_journal_get_cursor(3)): their layout is journald's business, which
  // refuses the ones it cannot seek to.
  const layoutsLeftToJournald: [string, string][] = [
    ['uppercase hex', CURSOR.toUpperCase()],
    ['no x= part', CURSOR.slice(0, CURSOR.lastIndexOf(';'))],
    ['a short seqnum id', CURSOR.replace('s=0123456789abcdef0123456789abcdef', 's=0123')],
    ['fields out of order', CURSOR.replace(/^s=([^;]*);i=([^;]*);/, 'i=$2;s=$1;')],
  ];
  for (const [label, cursor] of layoutsLeftToJournald) {
    it(`passes a cursor with ${label} to journalctl as one argument.`, () => {
      assert.deepEqual(optionsOf(argsFor({ afterCursor: cursor })), [`--cursor=${cursor}`]);
    });
  }
});

describe('isCursor', () => {
  it('accepts a real-looking journal cursor.', () => {
    assert.equal(isCursor(CURSOR), true);
  });

  it('accepts a cursor with one-digit counters.', () => {
    assert.equal(isCursor('s=00000000000000000000000000000000;i=1;b=ffffffffffffffffffffffffffffffff;m=0;t=0;x=0'), true);
  });

  it('rejects an empty string, options, injections and newlines.', () => {
    for (const value of ['', '--boot', `${CURSOR};rm -rf /`, `${CURSOR}\n`, `\n${CURSOR}`, `${CURSOR}\0`, 'x'.repeat(513)]) {
      assert.equal(isCursor(value), false, JSON.stringify(value));
    }
  });

  it('does not look into the layout: a cursor of cursor characters is for journald to judge.', () => {
    assert.equal(isCursor(CURSOR.replace('i=1a2b', `i=${'1'.repeat(17)}`)), true);
    assert.equal(isCursor('s=;i=;b=;m=;t=;x='), true);
  });
});

describe('journalctlArgs time range', () => {
  const date = new Date('2026-01-02T03:04:05.678Z');

  it('adds --since=@seconds.millis for a since date.', () => {
    assert.deepEqual(optionsOf(argsFor({ since: date })), ['--since=@1767323045.678']);
  });

  it('adds --until=@seconds.millis for an until date.', () => {
    assert.deepEqual(optionsOf(argsFor({ until: date })), ['--until=@1767323045.678']);
  });

  it('pads the milliseconds to three digits.', () => {
    assert.deepEqual(optionsOf(argsFor({ since: new Date('2026-01-02T03:04:05.007Z') })), ['--since=@1767323045.007']);
    assert.deepEqual(optionsOf(argsFor({ since: new Date('2026-01-02T03:04:05Z') })), ['--since=@1767323045.000']);
  });

  it('gives the epoch itself as @0.000.', () => {
    assert.deepEqual(optionsOf(argsFor({ since: new Date(0) })), ['--since=@0.000']);
  });

  it('writes a date before the epoch so that seconds plus fraction is the exact time.', () => {
    // -1.5 s is -2 s plus 0.5 s.
    assert.deepEqual(optionsOf(argsFor({ until: new Date(-1500) })), ['--until=@-2.500']);
  });

  it('adds both since and until, in that order.', () => {
    const until = new Date('2026-01-02T04:00:00.100Z');
    assert.deepEqual(optionsOf(argsFor({ since: date, until })), ['--since=@1767323045.678', '--until=@1767326400.100']);
  });

  it('rejects an invalid date.', () => {
    assertInvalid({ matches: TASK_MATCH, since: new Date(Number.NaN) }, /date/);
    assertInvalid({ matches: TASK_MATCH, until: new Date('not a date') }, /date/);
  });
});

describe('journalctlArgs priority', () => {
  for (let priority = 0; priority <= 7; priority++) {
    it(`adds --priority=0..${priority} for a maximum priority of ${priority}.`, () => {
      assert.deepEqual(optionsOf(argsFor({ maxPriority: priority })), [`--priority=0..${priority}`]);
    });
  }

  for (const priority of [8, -1, 2.5, Number.NaN]) {
    it(`rejects a maximum priority of ${priority}.`, () => {
      assertInvalid({ matches: TASK_MATCH, maxPriority: priority }, /priority/);
    });
  }
});

describe('journalctlArgs matches', () => {
  it('puts the matches after the -- separator with + between groups.', () => {
    const args = journalctlArgs({
      matches: [
        [['TESSIA_TASK_ID', 'abcd1234']],
        [
          ['UNIT', 'tessia-task-abcd1234.service'],
          ['_PID', '1'],
        ],
      ],
    });
    assert.deepEqual(args.slice(args.indexOf('--')), ['--', 'TESSIA_TASK_ID=abcd1234', '+', 'UNIT=tessia-task-abcd1234.service', '_PID=1']);
  });

  it('puts the separator after every option.', () => {
    const args = argsFor({ follow: true, tail: 3, afterCursor: CURSOR, since: new Date(0), maxPriority: 4 });
    assert.equal(args.indexOf('--'), args.length - 2);
    assert.equal(args.filter((arg) => arg === '--').length, 1);
  });

  it('accepts match values with dots, at signs, colons, dashes and underscores.', () => {
    const args = journalctlArgs({
      matches: [
        [
          ['_SYSTEMD_UNIT', 'user@1000.service'],
          ['X_Y', 'a:b-c_d.e'],
        ],
      ],
    });
    assert.deepEqual(args.slice(args.indexOf('--')), ['--', '_SYSTEMD_UNIT=user@1000.service', 'X_Y=a:b-c_d.e']);
  });

  it('accepts a value of exactly 255 characters.', () => {
    const value = 'a'.repeat(255);
    assert.equal(journalctlArgs({ matches: [[['FIELD', value]]] }).at(-1), `FIELD=${value}`);
  });

  it('rejects a query without matches.', () => {
    assertInvalid({ matches: [] }, /matches/);
  });

  // Source gap: an empty group is accepted. `matches: [[]]` gives a bare `--`, which journalctl
  // reads as no match at all: every entry of the journal, other tasks' included.
  it('rejects an empty group.', () => {
    assert.throws(() => journalctlArgs({ matches: [[]] }), InvalidJournalQuery);
    assert.throws(() => journalctlArgs({ matches: [[['TESSIA_TASK_ID', 'abcd1234']], []] }), InvalidJournalQuery);
  });

  for (const field of ['unit', 'Unit', 'TESSIA-TASK-ID', '', 'A B', 'A=B', 'A'.repeat(65)]) {
    it(`rejects the field name ${JSON.stringify(field)}.`, () => {
      assertInvalid({ matches: [[[field, 'value']]] }, /bad match/);
    });
  }

  const badValues: [string, string][] = [
    ['an empty value', ''],
    ['a value with a space', 'abcd 1234'],
    ['a value with =', 'a=b'],
    ['a value with /', '../etc/passwd'],
    ['a value with a newline', 'abcd\n1234'],
    ['a value of 256 characters', 'a'.repeat(256)],
    ['a value with a shell metacharacter', 'abcd;rm'],
    ['a value with a plus', 'a+b'],
  ];
  for (const [label, value] of badValues) {
    it(`rejects ${label}.`, () => {
      assertInvalid({ matches: [[['TESSIA_TASK_ID', value]]] }, /bad match/);
    });
  }

  it('rejects a bad match in a later group too.', () => {
    assertInvalid({ matches: [[['TESSIA_TASK_ID', 'abcd1234']], [['UNIT', 'bad value']]] }, /bad match UNIT/);
  });
});

describe('journalctlCommand', () => {
  const query: JournalQuery = { matches: TASK_MATCH };

  it('runs journalctl under stdbuf with a 64 KiB output buffer when there is a stdbuf.', () => {
    assert.deepEqual(journalctlCommand(query, { journalctl: 'journalctl', stdbuf: '/usr/bin/stdbuf' }), [
      '/usr/bin/stdbuf',
      ['--output=64K', 'journalctl', ...journalctlArgs(query)],
    ]);
  });

  it('runs journalctl as it is without a stdbuf.', () => {
    assert.deepEqual(journalctlCommand(query, { journalctl: '/opt/journalctl', stdbuf: null }), ['/opt/journalctl', journalctlArgs(query)]);
  });

  it('refuses a query journalctlArgs refuses, stdbuf or not.', () => {
    assert.throws(() => journalctlCommand({ matches: [] }, { journalctl: 'journalctl', stdbuf: '/usr/bin/stdbuf' }), InvalidJournalQuery);
  });
});
