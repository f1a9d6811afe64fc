#!/usr/bin/env node
/**
 * The echo machine as a task process. systemd starts it in the task's unit; it reads its script
 * from its standard input, writes ECHO and LOG lines as journal entries (LOG with its
 * level's priority and a TESSIA_LOG_LEVEL field), and on SIGTERM runs its CLEANUP section.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../../errors.js';
import { DEFAULT_PRIORITY, parsePriority, priorityName } from '../../journal/priority.js';
import { createTaskLog, readParameters } from '../sdk.js';
import { parseEchoScript, type EchoCommand, type LogLevel } from './language.js';

/** CRITICAL, ERROR, WARNING, INFO, DEBUG are names of journal priorities too. */
const priorityOfLevel = (level: LogLevel) => priorityName(parsePriority(level) ?? DEFAULT_PRIORITY);
const EXIT_TERMINATED = 128 + 15;
const MAX_TIMER_MS = 2_147_483_647;
const log = createTaskLog();

/** RETURN n unwinds the script like an exception; it is not one. */
class Returned extends Error {
  constructor(readonly value: number) {
    super(`RETURN ${value}`);
  }
}

/** Node's timers overflow past 2^31-1 ms (~24.8 days): sleep in pieces. */
async function sleepLong(totalMs: number, signal?: AbortSignal): Promise<void> {
  for (let left = totalMs; left > 0; left -= MAX_TIMER_MS) {
    await sleep(Math.min(left, MAX_TIMER_MS), undefined, signal ? { signal } : {});
  }
}

async function run(commands: EchoCommand[], signal?: AbortSignal): Promise<void> {
  for (const command of commands) {
    signal?.throwIfAborted();
    switch (command.kind) {
      case 'echo':
        log.write('info', command.text, { TESSIA_ECHO_LINE: command.line });
        break;
      case 'log':
        log.write(priorityOfLevel(command.level), command.text, {
          TESSIA_LOG_LEVEL: command.level,
          TESSIA_ECHO_LINE: command.line,
        });
        break;
      case 'sleep':
        await sleepLong(command.seconds * 1000, signal);
        break;
      case 'return':
        throw new Returned(command.value);
      case 'raise':
        log.write('err', `RuntimeError: RAISE at line ${command.line}`, { TESSIA_ECHO_LINE: command.line });
        await log.flush();
        // Dying by a signal is how a task reports an exception to systemd (Result=signal → -3);
        // the unit sets LimitCORE=0, so no core file is written.
        process.kill(process.pid, 'SIGABRT');
        await sleep(60_000);
        break;
      default: {
        const unreachable: never = command;
        throw new Error(`unknown command ${JSON.stringify(unreachable)}`);
      }
    }
  }
}

async function main(): Promise<number> {
  const script = parseEchoScript(readParameters());
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  log.write('info', 'Echo machine started');
  try {
    await run(script.commands, stop.signal);
    return 0;
  } catch (error) {
    if (error instanceof Returned) return error.value;
    if (!stop.signal.aborted) throw error;
  }
  log.write('info', 'Stop requested: running the cleanup section');
  try {
    await run(script.cleanup);
  } catch (error) {
    if (!(error instanceof Returned)) throw error;
  }
  return EXIT_TERMINATED;
}

main().then(
  async (code) => {
    await log.flush();
    process.exit(code);
  },
  async (error: unknown) => {
    log.write('err', `echo machine failed: ${messageOf(error)}`);
    await log.flush();
    process.kill(process.pid, 'SIGABRT');
  },
);
