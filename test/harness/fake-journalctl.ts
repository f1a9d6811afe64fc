/**
 * A stand-in for journalctl (test/fixtures/fake-journalctl.mjs), driven by a scenario: what it
 * prints, or a journal it reads from. Made in a directory of the caller's; endFakes() ends those
 * still running once the tests are done.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE = fileURLToPath(new URL('../fixtures/fake-journalctl.mjs', import.meta.url));

export type Step = { stdout: string } | { stderr: string } | { waitForSignal: true };

export interface Scenario {
  steps?: Step[];
  exitCode?: number;
  /** Stay alive after the steps until killed, as journalctl --follow does. */
  block?: boolean;
  /** Entries (JSON lines) in the journal's order: a plain read prints them from its --cursor=. */
  journal?: string[];
  /** What --follow prints of `journal`, before it waits until killed. */
  followed?: string[];
}

export interface Recorded {
  pid: number;
  argv: string[];
  /** _STDBUF_O: the output buffer coreutils' stdbuf gave it. */
  env: { SYSTEMD_COLORS: string | null; SYSTEMD_PAGER: string | null; LC_ALL: string | null; _STDBUF_O: string | null };
}

export interface FakeJournalctl {
  /** The program to give readJournal as `journalctl`. */
  path: string;
  /** What the fake saw when it last started: its pid, argv and environment. */
  record(): Recorded;
  /** The same, of every time it was started, in order. */
  runs(): Recorded[];
  /** Whether a `--follow` run of a `journal` scenario has printed its `followed` lines. */
  followerPrinted(): boolean;
  /** Lets a fake waiting at a `waitForSignal` step go on. */
  proceed(): void;
}

const fakes: FakeJournalctl[] = [];
let cases = 0;

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** A program that runs the fixture with this scenario (and exec's it, so its pid is the fixture's). */
export function fakeJournalctl(directory: string, scenario: Scenario): FakeJournalctl {
  const caseDirectory = join(directory, `case-${++cases}`);
  mkdirSync(caseDirectory);
  const scenarioFile = join(caseDirectory, 'scenario.json');
  const recordFile = join(caseDirectory, 'record.json');
  writeFileSync(scenarioFile, JSON.stringify({ ...scenario, recordFile }));
  const path = join(caseDirectory, 'journalctl');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `FAKE_JOURNALCTL_SCENARIO=${shellQuote(scenarioFile)}`,
      'export FAKE_JOURNALCTL_SCENARIO',
      `exec ${shellQuote(process.execPath)} ${shellQuote(FIXTURE)} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const record = () => JSON.parse(readFileSync(recordFile, 'utf8')) as Recorded;
  const runs = () => {
    try {
      return readFileSync(`${recordFile}.all`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Recorded);
    } catch {
      return [];
    }
  };
  const proceed = () => {
    const { pid } = record();
    if (isFixture(pid)) process.kill(pid, 'SIGUSR2');
  };
  const followerPrinted = () => existsSync(`${recordFile}.followed`);
  const fake = { path, record, runs, followerPrinted, proceed };
  fakes.push(fake);
  return fake;
}

/** Whether `pid` is still a fake (not a process that got the number since). */
function isFixture(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(FIXTURE);
  } catch {
    return false;
  }
}

/** A failed test may leave a blocked fake behind: ends it, so the run does not hang. */
export function endFakes(): void {
  for (const fake of fakes) {
    for (const { pid } of fake.runs()) if (isFixture(pid)) process.kill(pid, 'SIGKILL');
  }
  fakes.length = 0;
}
