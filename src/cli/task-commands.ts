/**
 * `tessia-task-runner task start|list|show|stop|delete|logs|files|get-file`: the API from a shell, with exit codes
 * a script can rely on (see TASK_USAGE).
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { BriefTaskView, FileListingView, LogLineView, TaskView } from '../api/openapi/responses.js';
import { messageOf } from '../errors.js';
import {
  ApiError,
  MAX_RETRY_WAIT_SECONDS,
  UnavailableError,
  call,
  callPages,
  jsonLines,
  openStream,
  type ClientSettings,
} from './client.js';
import { terminalSafe, terminalSafeJson } from './terminal-text.js';
import { ADMIN_GROUP, PACKAGE_API_SOCKET } from '../package-layout.js';
import { EXIT } from './exit-status.js';

const DEFAULT_TIMEOUT_SECONDS = 30;
/** The longest delay a timer takes (2^31 - 1 ms); a longer one would fire at once. */
const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export const TASK_USAGE = `Usage: tessia-task-runner task <command> [options]

Commands:
  start <machine> [--parameters JSON | --parameters-file FILE] [--wait | -f]
                                                                  start a task, print its id; --wait: then wait
                                                                  for its end, -f: follow its log to the end
  wait <id>...                                                    wait until each task has ended; print how
  list [--full]                                                   list tasks
  show <id>                                                       one task, as JSON
  stop <id>                                                       stop a task (again: kill it)
  delete <id>                                                     forget a task (stops it first)
  logs <id> [-f] [--after CURSOR] [--tail N] [--priority P] [--json] [--color|--no-color]
                                                                  print its journal; -f follows until it ends
  files <id> [--json]                                             list its working directory (type, size, modified, path)
  get-file <id> <path> [--output FILE]                            a file of it, to stdout or a new FILE

Connection (also $TESSIA_RUNNER_URL, $TESSIA_RUNNER_SOCKET, $TESSIA_RUNNER_TIMEOUT): by default the
package's Unix socket ${PACKAGE_API_SOCKET} when it exists (root and members of
${ADMIN_GROUP} may use it, without a token), else http://127.0.0.1:7356
  --url URL
  --token-file FILE   a bearer token, the file's first line (also $TESSIA_RUNNER_TOKEN_FILE), or the
                      token itself in $TESSIA_RUNNER_TOKEN; never on the command line, where every
                      local user can read it
  --cacert FILE --cert FILE --key FILE     HTTPS and mutual TLS
  --socket PATH       a Unix socket
  --timeout SECONDS   give up when connecting, retries and the answer take longer (default ${DEFAULT_TIMEOUT_SECONDS});
                      logs: until the stream starts, and without -f while it stalls that long

Busy (429) or unavailable (503) with Retry-After: list, show and logs are sent again after the wait
asked (at most ${MAX_RETRY_WAIT_SECONDS} s each, within --timeout); start, stop and delete only when the runner says
it did nothing (TOO_MANY_TASKS, MACHINE_BUSY, SHUTTING_DOWN), never when it may have (SYSTEMD_UNAVAILABLE).

Exit codes: 0 done (wait, start --wait/-f, logs -f: the task succeeded, every task for wait),
1 a task failed (exit code not 0, or lost) or another error,
2 usage, 3 no such task, 4 not allowed (401/403), 5 the runner is unreachable or unavailable.
`;

/** `task <command> --help`: the command's own line, then the connection options. */
function commandUsage(command: string): string | undefined {
  const line = TASK_USAGE.split('\n').find((each) => each.startsWith(`  ${command} `));
  if (!line) return undefined;
  const connection = TASK_USAGE.slice(TASK_USAGE.indexOf('Connection'));
  return `Usage: tessia-task-runner task ${line.trim().replace(/\s{2,}/, '\n  ')}\n\n${connection}`;
}

export const TASK_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
  parameters: { type: 'string' },
  'parameters-file': { type: 'string' },
  full: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  wait: { type: 'boolean' },
  after: { type: 'string' },
  tail: { type: 'string' },
  priority: { type: 'string' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  color: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COLORS: Record<number, string> = {
  0: '\x1b[1;31m',
  1: '\x1b[1;31m',
  2: '\x1b[1;31m',
  3: '\x1b[31m',
  4: '\x1b[33m',
  5: '\x1b[1m',
  7: '\x1b[2m',
};

export async function taskCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: TASK_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`${messageOf(error)}\n${TASK_USAGE}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, subject] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write((command === undefined ? undefined : commandUsage(command)) ?? TASK_USAGE);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const timeoutSeconds = parseTimeout(values.timeout, process.env['TESSIA_RUNNER_TIMEOUT']);
  if (timeoutSeconds instanceof UsageError) {
    process.stderr.write(`${timeoutSeconds.message}\n${TASK_USAGE}`);
    return EXIT.usage;
  }
  const settings: ClientSettings = {
    url: values.url ?? process.env['TESSIA_RUNNER_URL'] ?? 'http://127.0.0.1:7356',
    timeoutSeconds,
  };
  const socket = socketOf(values);
  if (socket !== undefined) settings.socket = socket;
  if (values.token !== undefined) {
    process.stderr.write(
      '--token is not accepted: a token on the command line is readable by every local user (ps, /proc/PID/cmdline). Put it in a file only you can read and pass --token-file FILE (or $TESSIA_RUNNER_TOKEN_FILE), or in $TESSIA_RUNNER_TOKEN\n',
    );
    return EXIT.usage;
  }
  const token = tokenOf(values['token-file']);
  if (token instanceof UsageError) {
    process.stderr.write(`${token.message}\n`);
    return EXIT.usage;
  }
  if (token !== undefined) settings.token = token;
  for (const key of ['cacert', 'cert', 'key'] as const) if (values[key]) settings[key] = values[key];
  const need = (what: string) => {
    if (!subject) throw new UsageError(`${command} needs ${what}`);
    return encodeURIComponent(subject);
  };
  try {
    switch (command) {
      case 'start': {
        const machine = need('a machine');
        const parameters = parametersOf(values);
        const task = await call<{ taskId: string; state: string }>(settings, 'POST', '/v1/tasks', {
          machine: decodeURIComponent(machine),
          parameters,
        });
        process.stdout.write(values.json ? `${terminalSafeJson(task)}\n` : `${terminalSafe(task.taskId)}\n`);
        if (values.follow)
          return await logs(settings, encodeURIComponent(task.taskId), {
            follow: true,
            color: values.color,
            'no-color': values['no-color'],
          });
        if (values.wait) return await waitFor(settings, [task.taskId]);
        return EXIT.ok;
      }
      case 'wait': {
        need('a task id');
        return await waitFor(settings, positionals.slice(1));
      }
      case 'list': {
        // Every page: the runner links to the next one while there is one.
        const tasks = await callPages<BriefTaskView & Partial<TaskView>>(settings, `/v1/tasks${values.full ? '?view=full' : ''}`);
        if (values.json) process.stdout.write(`${terminalSafeJson(tasks)}\n`);
        else
          for (const task of tasks)
            process.stdout.write(
              `${terminalSafe(`${task.taskId}\t${task.state}${values.full ? `\t${task.machine ?? ''}\t${task.exitCode ?? ''}` : ''}`)}\n`,
            );
        return EXIT.ok;
      }
      case 'show':
        process.stdout.write(`${terminalSafeJson(await call(settings, 'GET', `/v1/tasks/${need('a task id')}`), 2)}\n`);
        return EXIT.ok;
      case 'stop': {
        const task = await call<{ state: string }>(settings, 'POST', `/v1/tasks/${need('a task id')}/stop`);
        process.stdout.write(`${terminalSafe(task.state)}\n`);
        return EXIT.ok;
      }
      case 'delete':
        await call(settings, 'DELETE', `/v1/tasks/${need('a task id')}`);
        return EXIT.ok;
      case 'logs':
        return await logs(settings, need('a task id'), values);
      case 'files': {
        const listing = await call<FileListingView>(settings, 'GET', `/v1/tasks/${need('a task id')}/files`);
        if (values.json) process.stdout.write(`${terminalSafeJson(listing)}\n`);
        else
          for (const file of listing.files)
            process.stdout.write(
              `${terminalSafe(`${file.type === 'directory' ? 'd' : '-'}\t${file.size}\t${file.modified}\t${file.path}`)}\n`,
            );
        if (listing.truncated)
          process.stderr.write('tessia-task-runner: more files than the runner lists at once (limits.maxFileEntries, maxFileDepth)\n');
        return EXIT.ok;
      }
      case 'get-file': {
        const id = need('a task id');
        const path = positionals[2];
        if (path === undefined) throw new UsageError('get-file needs a task id and a path');
        const response = await openStream(settings, `/v1/tasks/${id}/files/${path.split('/').map(encodeURIComponent).join('/')}`);
        // A new file only: never over one that is there (nor through a link someone planted there).
        await pipeline(response, values.output === undefined ? process.stdout : createWriteStream(values.output, { flags: 'wx' }));
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${TASK_USAGE}`);
      return EXIT.usage;
    }
    if (error instanceof UnavailableError) {
      process.stderr.write(`tessia-task-runner: ${error.message}\n`);
      return EXIT.unavailable;
    }
    if (error instanceof ApiError) {
      process.stderr.write(`tessia-task-runner: ${error.status}: ${error.message}\n`);
      return exitCodeOf(error.status);
    }
    process.stderr.write(`tessia-task-runner: cannot reach ${settings.socket ?? settings.url}: ${messageOf(error)}\n`);
    if (settings.socket !== undefined && (error as NodeJS.ErrnoException).code === 'EACCES') {
      process.stderr.write(`  only root and members of ${ADMIN_GROUP} may use it: usermod -aG ${ADMIN_GROUP} USER (then log in again)\n`);
      return EXIT.denied;
    }
    return EXIT.unavailable;
  }
}

/**
 * The Unix socket to go through, if any. Flags before the environment, a socket before a URL:
 * --socket; --url (none); $TESSIA_RUNNER_SOCKET; $TESSIA_RUNNER_URL (none); else the package's
 * socket when it exists (its mode decides who may connect: the error says so).
 */
function socketOf(values: { socket?: string | undefined; url?: string | undefined }, environment = process.env): string | undefined {
  if (values.socket !== undefined) return values.socket;
  if (values.url !== undefined) return undefined;
  if (environment['TESSIA_RUNNER_SOCKET']) return environment['TESSIA_RUNNER_SOCKET'];
  if (environment['TESSIA_RUNNER_URL']) return undefined;
  return existsSync(PACKAGE_API_SOCKET) ? PACKAGE_API_SOCKET : undefined;
}

class UsageError extends Error {}

function exitCodeOf(status: number): number {
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403) return EXIT.denied;
  // 502 and 504 come from a proxy in front of the runner: unavailable too.
  if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT.unavailable;
  return EXIT.failed;
}

/**
 * The bearer token: --token-file, else $TESSIA_RUNNER_TOKEN_FILE (the first line of the file), else
 * $TESSIA_RUNNER_TOKEN; none when none is set. Errors name the file, never what is in it.
 */
function tokenOf(option: string | undefined): string | undefined | UsageError {
  const environment = process.env['TESSIA_RUNNER_TOKEN_FILE'];
  const [name, file] =
    option !== undefined ? ['--token-file', option] : ['$TESSIA_RUNNER_TOKEN_FILE', environment === '' ? undefined : environment];
  if (file === undefined) return process.env['TESSIA_RUNNER_TOKEN'] || undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return new UsageError(`${name}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const token = text.split('\n')[0]?.trim() ?? '';
  return token === '' ? new UsageError(`${name}: ${file} is empty: the token is its first line`) : token;
}

/** --timeout, else $TESSIA_RUNNER_TIMEOUT, else the default: seconds, more than 0. */
function parseTimeout(option: string | undefined, environment: string | undefined): number | UsageError {
  const [name, text] = option !== undefined ? ['--timeout', option] : ['$TESSIA_RUNNER_TIMEOUT', environment];
  if (text === undefined || text === '') return DEFAULT_TIMEOUT_SECONDS;
  const seconds = Number(text);
  if (!/^\s*[\d.]+\s*$/.test(text) || !(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS)) {
    return new UsageError(`${name}: "${text}" is not a number of seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}`);
  }
  return seconds;
}

/** The parameters of `start`: JSON from --parameters or --parameters-file; a bad one is a usage error. */
function parametersOf(values: { parameters?: string; 'parameters-file'?: string }): unknown {
  const file = values['parameters-file'];
  const [name, text] = file ? [`--parameters-file ${file}`, readParametersFile(file)] : ['--parameters', values.parameters];
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${name}: not JSON: ${messageOf(error)}`);
  }
}

function readParametersFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--parameters-file: ${messageOf(error)}`);
  }
}

/** The longest a long-poll asks the runner to hold an answer (its own limit is 300 s). */
const LONG_POLL_SECONDS = 300;

interface FinishedView {
  taskId: string;
  state: string;
  exitCode: number | null;
}

/**
 * Waits until every task has ended, one long-poll at a time (each shorter than --timeout, so that a
 * runner that stopped answering is noticed), and prints each end on stderr. 0 when every task
 * exited 0; 1 when one did not.
 */
async function waitFor(settings: ClientSettings, ids: readonly string[]): Promise<number> {
  const pollSeconds = Math.max(1, Math.min(LONG_POLL_SECONDS, Math.floor(settings.timeoutSeconds - 5)));
  let failed = false;
  for (const id of ids) {
    let task: FinishedView;
    do {
      task = await call<FinishedView>(settings, 'GET', `/v1/tasks/${encodeURIComponent(id)}?wait=finished&timeout=${pollSeconds}`);
    } while (task.state !== 'exited' && task.state !== 'lost');
    process.stderr.write(terminalSafe(`-- task ${task.taskId} ${task.state}, exit code ${task.exitCode ?? 'none'} --`) + '\n');
    if (task.exitCode !== 0) failed = true;
  }
  return failed ? EXIT.failed : EXIT.ok;
}

async function logs(settings: ClientSettings, id: string, values: Record<string, unknown>): Promise<number> {
  const query = new URLSearchParams();
  if (values['follow']) query.set('follow', 'true');
  for (const key of ['after', 'tail', 'priority'] as const) {
    const value = values[key];
    if (typeof value === 'string') query.set(key, value);
  }
  const path = `/v1/tasks/${id}/logs${query.size > 0 ? `?${query.toString()}` : ''}`;
  const response = await openStream(settings, path);
  const color = Boolean(values['color']) || (process.stdout.isTTY && !values['no-color'] && !process.env['NO_COLOR']);
  let end: { exitCode: number | null; state: string } | undefined;
  // A followed stream may rightly be quiet for hours; a dump must keep coming.
  const stallSeconds = values['follow'] ? undefined : settings.timeoutSeconds;
  for await (const parsed of jsonLines(settings, path, response, stallSeconds)) {
    const line = parsed as LogLineView;
    // What a task wrote is cleaned of escape sequences and control characters before it reaches
    // the terminal (terminal-text.ts); the colours are ours, added after.
    if (values['json']) {
      if (line.type !== 'heartbeat') process.stdout.write(`${terminalSafeJson(line)}\n`);
    } else if (line.type === 'entry') {
      // What another runner sends is checked as it is read: a line without fields is still printed.
      const identifier = (line.fields as Partial<typeof line.fields> | undefined)?.['SYSLOG_IDENTIFIER'];
      const text = terminalSafe(`${line.timestamp ?? ''} ${typeof identifier === 'string' ? identifier : line.source}: ${line.message}`);
      const paint = color ? COLORS[line.priority] : undefined;
      process.stdout.write(paint ? `${paint}${text}\x1b[0m\n` : `${text}\n`);
    } else if (line.type === 'end') {
      process.stderr.write(terminalSafe(`-- task ${line.taskId} ${line.state}, exit code ${line.exitCode ?? 'none'} --`) + '\n');
      end = { exitCode: line.exitCode, state: line.state };
    } else if (line.type === 'shutdown') {
      process.stderr.write(terminalSafe(`-- the runner is restarting: resume with --after '${line.after ?? ''}' --`) + '\n');
    }
  }
  if (!values['follow']) return EXIT.ok;
  return end?.exitCode === 0 ? EXIT.ok : EXIT.failed;
}
