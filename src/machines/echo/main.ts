#!/usr/bin/env node
/**
 * The echo machine as a task process. systemd starts it in the task's unit; it reads its script
 * from the `parameters` credential, writes ECHO lines to stdout and LOG lines with a syslog
 * priority prefix (journald turns `<N>` into PRIORITY), and on SIGTERM runs its CLEANUP section.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEchoScript, type EchoCommand, type LogLevel } from './language.js';

const PRIORITY: Record<LogLevel, number> = { CRITICAL: 2, ERROR: 3, WARNING: 4, INFO: 6, DEBUG: 7 };
const EXIT_TERMINATED = 128 + 15;

class Returned {
  constructor(readonly value: number) {}
}

function readParameters(): unknown {
  const directory = process.env['CREDENTIALS_DIRECTORY'];
  if (!directory) throw new Error('no CREDENTIALS_DIRECTORY: the echo machine runs as a tessia task unit');
  return JSON.parse(readFileSync(join(directory, 'parameters'), 'utf8'));
}

function emit(priority: number, text: string): void {
  // An explicit prefix on every line, so text that starts with "<3>" is never read as a priority.
  process.stdout.write(`<${priority}>${text}\n`);
}

/** Node's timers overflow past 2^31-1 ms (~24.8 days): sleep in pieces. */
async function sleepLong(totalMs: number, signal?: AbortSignal): Promise<void> {
  const MAX_TIMER_MS = 2_147_483_647;
  for (let left = totalMs; left > 0; left -= MAX_TIMER_MS) {
    await sleep(Math.min(left, MAX_TIMER_MS), undefined, signal ? { signal } : {});
  }
}

async function run(commands: EchoCommand[], signal?: AbortSignal): Promise<void> {
  for (const command of commands) {
    signal?.throwIfAborted();
    switch (command.kind) {
      case 'echo':
        emit(6, command.text);
        break;
      case 'log':
        emit(PRIORITY[command.level], `${command.level}: ${command.text}`);
        break;
      case 'sleep':
        await sleepLong(command.seconds * 1000, signal);
        break;
      case 'return':
        throw new Returned(command.value);
      case 'raise':
        emit(3, `RuntimeError: RAISE at line ${command.line}`);
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
  emit(6, 'Echo machine started');
  try {
    await run(script.commands, stop.signal);
    return 0;
  } catch (error) {
    if (error instanceof Returned) return error.value;
    if (!stop.signal.aborted) throw error;
  }
  emit(6, 'Stop requested: running the cleanup section');
  try {
    await run(script.cleanup);
  } catch (error) {
    if (!(error instanceof Returned)) throw error;
  }
  return EXIT_TERMINATED;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    emit(3, `echo machine failed: ${error instanceof Error ? error.message : String(error)}`);
    process.kill(process.pid, 'SIGABRT');
  },
);
