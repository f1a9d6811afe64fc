/**
 * `tessia-task-runner reload`: asks the running service to reload and waits for the answer, so
 * that `systemctl reload` (whose ExecReload= runs this) succeeds only when the reload did.
 */
import { terminalSafe } from './terminal-text.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROL_SOCKET_NAME, requestReload } from '../control-socket.js';
import { messageOf } from '../errors.js';
import { EXIT } from './exit-status.js';

const DEFAULT_TIMEOUT_SECONDS = 60;

export const RELOAD_USAGE = `Usage: tessia-task-runner reload [--control PATH] [--timeout SECONDS]

Asks the running service to read its config, token file and TLS files again, and waits for the
answer: exit 0 when it applied them, 1 when it refused (it keeps the config in force; why is printed
and logged), 5 when it does not answer. \`systemctl reload tessia-task-runner\` runs it.

  --control PATH     the service's control socket (default: $RUNTIME_DIRECTORY/${CONTROL_SOCKET_NAME},
                     else /run/tessia-task-runner/${CONTROL_SOCKET_NAME})
  --timeout SECONDS  how long to wait for the answer (default ${DEFAULT_TIMEOUT_SECONDS})
`;

export const RELOAD_OPTIONS = { control: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

export async function reloadCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: RELOAD_OPTIONS,
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${messageOf(error)}\n${RELOAD_USAGE}`);
    return EXIT.usage;
  }
  if (values.help) {
    process.stdout.write(RELOAD_USAGE);
    return EXIT.ok;
  }
  const seconds = values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(values.timeout);
  if (!(seconds > 0 && seconds <= 3600)) {
    process.stderr.write(`--timeout: "${values.timeout ?? ''}" is not a number of seconds above 0 and at most 3600\n${RELOAD_USAGE}`);
    return EXIT.usage;
  }
  const runtimeDirectory = process.env['RUNTIME_DIRECTORY']?.split(':')[0] ?? '/run/tessia-task-runner';
  const path = values.control ?? join(runtimeDirectory, CONTROL_SOCKET_NAME);
  let answer;
  try {
    answer = await requestReload(path, seconds * 1000);
  } catch (error) {
    process.stderr.write(`tessia-task-runner reload: no answer from the service at ${path}: ${messageOf(error)}\n`);
    return EXIT.unavailable;
  }
  if (answer.ok) {
    process.stdout.write(`${terminalSafe(answer.message)}\n`);
    return EXIT.ok;
  }
  process.stderr.write(`tessia-task-runner reload: refused, the service keeps its config: ${terminalSafe(answer.message)}\n`);
  return EXIT.failed;
}
