/**
 * `tessia-task-runner task start|list|show|stop|delete|logs`: the API from a shell, with exit codes
 * a script can rely on (see TASK_USAGE).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, call, open, type ClientSettings } from './client.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, denied: 4, unavailable: 5 } as const;

export const TASK_USAGE = `Usage: tessia-task-runner task <command> [options]

Commands:
  start <machine> [--parameters JSON | --parameters-file FILE]   start a task, print its id
  list [--full]                                                   list tasks
  show <id>                                                       one task, as JSON
  stop <id>                                                       stop a task (again: kill it)
  delete <id>                                                     forget a task (stops it first)
  logs <id> [-f] [--after CURSOR] [--tail N] [--priority P] [--json] [--color|--no-color]
                                                                  print its journal; -f follows until it ends

Connection (also $TESSIA_RUNNER_URL, $TESSIA_RUNNER_TOKEN):
  --url URL           (default http://127.0.0.1:7356)
  --token TOKEN | --token-file FILE
  --cacert FILE --cert FILE --key FILE     HTTPS and mutual TLS
  --socket PATH       a Unix socket

Exit codes: 0 done (logs -f: the task succeeded), 1 the task failed (logs -f) or another error,
2 usage, 3 no such task, 4 not allowed (401/403), 5 the runner is unreachable or unavailable.
`;

/** `task <command> --help`: the command's own line, then the connection options. */
function commandUsage(command: string): string | undefined {
  const line = TASK_USAGE.split('\n').find((each) => each.startsWith(`  ${command} `));
  if (!line) return undefined;
  const connection = TASK_USAGE.slice(TASK_USAGE.indexOf('Connection'));
  return `Usage: tessia-task-runner task ${line.trim().replace(/\s{2,}/, '\n  ')}\n\n${connection}`;
}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  socket: { type: 'string' },
  parameters: { type: 'string' },
  'parameters-file': { type: 'string' },
  full: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  after: { type: 'string' },
  tail: { type: 'string' },
  priority: { type: 'string' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  color: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COLORS: Record<number, string> = { 0: '\x1b[1;31m', 1: '\x1b[1;31m', 2: '\x1b[1;31m', 3: '\x1b[31m', 4: '\x1b[33m', 5: '\x1b[1m', 7: '\x1b[2m' };

export async function taskCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${TASK_USAGE}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, subject] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write((command && commandUsage(command)) || TASK_USAGE);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const settings: ClientSettings = {
    url: values.url ?? process.env['TESSIA_RUNNER_URL'] ?? 'http://127.0.0.1:7356',
  };
  const token = values.token ?? (values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim() : process.env['TESSIA_RUNNER_TOKEN']);
  if (token) settings.token = token;
  for (const key of ['cacert', 'cert', 'key', 'socket'] as const) if (values[key]) settings[key] = values[key];
  const need = (what: string) => {
    if (!subject) throw new UsageError(`${command} needs ${what}`);
    return encodeURIComponent(subject);
  };
  try {
    switch (command) {
      case 'start': {
        const machine = need('a machine');
        const text = values['parameters-file'] ? readFileSync(values['parameters-file'], 'utf8') : values.parameters;
        const parameters = text === undefined ? null : JSON.parse(text);
        const task = await call<{ taskId: string; state: string }>(settings, 'POST', '/v1/tasks', { machine: decodeURIComponent(machine), parameters });
        process.stdout.write(values.json ? `${JSON.stringify(task)}\n` : `${task.taskId}\n`);
        return EXIT.ok;
      }
      case 'list': {
        const tasks = await call<Record<string, unknown>[]>(settings, 'GET', `/v1/tasks${values.full ? '?view=full' : ''}`);
        if (values.json) process.stdout.write(`${JSON.stringify(tasks)}\n`);
        else for (const task of tasks) process.stdout.write(`${task['taskId']}\t${task['state']}${values.full ? `\t${task['machine']}\t${task['exitCode'] ?? ''}` : ''}\n`);
        return EXIT.ok;
      }
      case 'show':
        process.stdout.write(`${JSON.stringify(await call(settings, 'GET', `/v1/tasks/${need('a task id')}`), null, 2)}\n`);
        return EXIT.ok;
      case 'stop': {
        const task = await call<{ state: string }>(settings, 'POST', `/v1/tasks/${need('a task id')}/stop`);
        process.stdout.write(`${task.state}\n`);
        return EXIT.ok;
      }
      case 'delete':
        await call(settings, 'DELETE', `/v1/tasks/${need('a task id')}`);
        return EXIT.ok;
      case 'logs':
        return await logs(settings, need('a task id'), values);
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${TASK_USAGE}`);
      return EXIT.usage;
    }
    if (error instanceof SyntaxError) {
      process.stderr.write(`--parameters: not JSON: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof ApiError) {
      process.stderr.write(`tessia-task-runner: ${error.status}: ${error.message}\n`);
      if (error.status === 404) return EXIT.notFound;
      if (error.status === 401 || error.status === 403) return EXIT.denied;
      if (error.status === 503 || error.status === 429) return EXIT.unavailable;
      return EXIT.failed;
    }
    process.stderr.write(`tessia-task-runner: cannot reach ${settings.socket ?? settings.url}: ${(error as Error).message}\n`);
    return EXIT.unavailable;
  }
}

class UsageError extends Error {}

async function logs(settings: ClientSettings, id: string, values: Record<string, unknown>): Promise<number> {
  const query = new URLSearchParams();
  if (values['follow']) query.set('follow', 'true');
  for (const key of ['after', 'tail', 'priority'] as const) if (typeof values[key] === 'string') query.set(key, values[key] as string);
  const response = await open(settings, 'GET', `/v1/tasks/${id}/logs?${query}`);
  if ((response.statusCode ?? 0) >= 400) {
    let text = '';
    for await (const chunk of response) text += chunk;
    throw new ApiError(response.statusCode ?? 0, (JSON.parse(text) as { detail: string }).detail);
  }
  const color = Boolean(values['color']) || (process.stdout.isTTY && !values['no-color'] && !process.env['NO_COLOR']);
  let partial = '';
  let end: { exitCode: number | null; state: string } | undefined;
  response.setEncoding('utf8');
  for await (const chunk of response) {
    partial += chunk;
    let at: number;
    while ((at = partial.indexOf('\n')) !== -1) {
      const line = JSON.parse(partial.slice(0, at)) as Record<string, any>;
      partial = partial.slice(at + 1);
      if (values['json']) {
        if (line['type'] !== 'heartbeat') process.stdout.write(`${JSON.stringify(line)}\n`);
      } else if (line['type'] === 'entry') {
        const text = `${line['timestamp']} ${line['fields']?.['SYSLOG_IDENTIFIER'] ?? line['source']}: ${line['message']}`;
        const paint = color ? COLORS[line['priority'] as number] : undefined;
        process.stdout.write(paint ? `${paint}${text}\x1b[0m\n` : `${text}\n`);
      } else if (line['type'] === 'end') {
        process.stderr.write(`-- task ${line['taskId']} ${line['state']}, exit code ${line['exitCode']} --\n`);
      } else if (line['type'] === 'shutdown') {
        process.stderr.write(`-- the runner is restarting: resume with --after '${line['after']}' --\n`);
      }
      if (line['type'] === 'end') end = { exitCode: line['exitCode'], state: line['state'] };
    }
  }
  if (!values['follow']) return EXIT.ok;
  return end && end.exitCode === 0 ? EXIT.ok : EXIT.failed;
}
