import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-status.js';
import { RELOAD_OPTIONS } from '../../src/cli/reload-command.js';
import { SERVE_OPTIONS } from '../../src/cli/serve.js';
import { TASK_OPTIONS, TASK_USAGE } from '../../src/cli/task-commands.js';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { skipUnlessInstalled } from '../harness/requirements.js';

const MAN_DIR = join(REPO_DIR, 'docs/man');
const PAGES = ['tessia-task-runner.8', 'tessia-task-runner.yaml.5'];

/** A page's text as a reader sees it, near enough to search: no font changes, hyphens as typed. */
function plain(roff: string): string {
  return roff
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\&/g, '');
}

/** The page's `.SH name` section. */
function section(roff: string, name: string): string {
  const start = roff.indexOf(`\n.SH ${name}\n`);
  assert.ok(start >= 0, `no section ${name}`);
  const end = roff.indexOf('\n.SH ', start + 1);
  return roff.slice(start, end < 0 ? undefined : end);
}

/** Environment variables the service and the CLI read (src/, less the private-systemd launcher). */
function environmentVariablesRead(): Set<string> {
  const names = new Set<string>();
  const walk = (directory: string): void => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory() && entry.name !== 'embedded') walk(path);
      else if (entry.name.endsWith('.ts')) {
        for (const [, name] of readFileSync(path, 'utf8').matchAll(/(?:process\.env|environment)\['([A-Z_]+)'\]/g)) names.add(name ?? '');
      }
    }
  };
  walk(join(REPO_DIR, 'src'));
  return names;
}

/**
 * Read, but not the admin's: set by systemd for a protocol of its own (the journal stream, the pid
 * checks of socket activation and the watchdog), or the tasks' and the tests' business.
 */
const NOT_THE_ADMINS = new Set([
  'JOURNAL_STREAM',
  'LISTEN_PID',
  'WATCHDOG_PID',
  'TESSIA_MACHINE',
  'TESSIA_LOG_LEVEL',
  'TESSIA_TEST_SYSTEMD_PID',
]);

describe('tessia-task-runner(8)', () => {
  const roff = readFileSync(join(MAN_DIR, 'tessia-task-runner.8'), 'utf8');
  const text = plain(roff);

  it("names each command the CLI's usage lists, under COMMANDS", () => {
    const help = spawnSync(process.execPath, [join(REPO_DIR, 'dist/cli/main.js'), '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    const commands = [...help.stdout.matchAll(/tessia-task-runner (\w+) /g)].map(([, command]) => command ?? '');
    assert.deepEqual([...new Set(commands)].sort(), ['reload', 'serve', 'task']);
    const commandList = TASK_USAGE.slice(TASK_USAGE.indexOf('Commands:'), TASK_USAGE.indexOf('\n\n', TASK_USAGE.indexOf('Commands:')));
    const taskCommands = [...commandList.matchAll(/^ {2}([a-z-]+) /gm)].map(([, command]) => command ?? '');
    assert.ok(taskCommands.length >= 9, taskCommands.join(' '));
    const listed = plain(section(roff, 'COMMANDS'));
    for (const command of commands) assert.match(listed, new RegExp(`^\\.B ${command}$`, 'm'), command);
    // The usage's other lines: tessia-task-runner --help, --version.
    for (const flag of help.stdout.matchAll(/tessia-task-runner (--[a-z]+)/g)) assert.ok(listed.includes(flag[1] ?? ''), flag[1]);
    for (const command of taskCommands) assert.match(listed, new RegExp(`^(\\.BI? )?"?task ${command}\\b`, 'm'), `task ${command}`);
  });

  it('gives, under EXIT STATUS, every status the command exits with, and the unit the ones it does not restart for', () => {
    const statuses = plain(section(roff, 'EXIT STATUS'));
    for (const [name, status] of Object.entries(EXIT))
      assert.match(statuses, new RegExp(`(^|\\D)${status}(\\D|$)`, 'm'), `${name} (${status})`);
    const unit = readFileSync(join(REPO_DIR, 'units/tessia-task-runner.service'), 'utf8');
    const prevented = /^RestartPreventExitStatus=(.+)$/m.exec(unit)?.[1] ?? '';
    assert.ok(prevented, 'the unit has RestartPreventExitStatus=');
    assert.ok(
      statuses.replace(/\\ /g, ' ').includes(`RestartPreventExitStatus=${prevented}`),
      `the page says RestartPreventExitStatus=${prevented}`,
    );
  });

  it('names every option of serve, reload and task', () => {
    const options = [SERVE_OPTIONS, RELOAD_OPTIONS, TASK_OPTIONS].flatMap((table) =>
      Object.entries(table).flatMap(([name, option]) => [`--${name}`, ...('short' in option ? [`-${option.short}`] : [])]),
    );
    assert.ok(options.length > 25, `${options.length} options`);
    for (const option of options) assert.match(text, new RegExp(`(^|[\\s[(|,])${option}(?![\\w-])`, 'm'), option);
  });

  it('names, under ENVIRONMENT, every variable the service and the CLI read for the admin', () => {
    const read = [...environmentVariablesRead()].filter((name) => !NOT_THE_ADMINS.has(name));
    assert.ok(read.length >= 12, read.join(' '));
    const environment = plain(section(roff, 'ENVIRONMENT'));
    for (const name of read) assert.match(environment, new RegExp(`\\b${name}\\b`), name);
    for (const name of ['SIGNALS', 'FILES', 'EXIT STATUS', 'SEE ALSO']) section(roff, name);
  });
});

describe(
  'the manual pages',
  { skip: skipUnlessInstalled(['man'], 'rendering the manual pages needs man-db: apt-get install man-db (lintian pulls it in)') },
  () => {
    it('render without a warning, as lintian checks them', () => {
      for (const page of PAGES) {
        const rendered = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', join(MAN_DIR, page)], {
          encoding: 'utf8',
          env: { ...process.env, LC_ALL: 'C.UTF-8', MANROFFSEQ: '', MANWIDTH: '80' },
        });
        assert.equal(rendered.status, 0, `${page}: ${rendered.stderr}`);
        assert.equal(rendered.stderr, '', `${page} has warnings`);
        assert.ok(rendered.stdout.split('\n').length > 100, `${page} rendered ${rendered.stdout.length} characters`);
      }
    });
  },
);
