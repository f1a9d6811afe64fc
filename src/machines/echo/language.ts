/**
 * The echo machine's language, as in tessia-mesh's EchoMachine: one statement a line, `#` starts a
 * comment, keywords are case-insensitive, and every syntax error is found before the task starts.
 */

export const LOG_LEVELS = ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type EchoCommand =
  | { kind: 'echo'; line: number; text: string }
  | { kind: 'sleep'; line: number; seconds: number }
  | { kind: 'log'; line: number; level: LogLevel; text: string }
  | { kind: 'return'; line: number; value: number }
  | { kind: 'raise'; line: number };

export interface EchoScript {
  resources: { shared: string[]; exclusive: string[] };
  commands: EchoCommand[];
  /** Run when the task is stopped (SIGTERM from a stop request or the runtime limit). */
  cleanup: EchoCommand[];
}

export class EchoSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`line ${line}: ${problem}`);
    this.name = 'EchoSyntaxError';
  }
}

const KEYWORDS = ['ECHO', 'SLEEP', 'LOG', 'USE', 'RETURN', 'RAISE', 'CLEANUP'] as const;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

/** `parameters` is a list of lines or one multi-line string. */
function toLines(parameters: unknown): string[] {
  if (typeof parameters === 'string') return parameters.split(/\r?\n/);
  if (Array.isArray(parameters)) {
    return parameters.map((line, index) => {
      if (typeof line !== 'string') {
        throw new EchoSyntaxError(index + 1, `expected a string, got ${line === null ? 'null' : typeof line}`);
      }
      return line;
    });
  }
  throw new EchoSyntaxError(1, 'parameters must be a list of lines or a string');
}

export function parseEchoScript(parameters: unknown): EchoScript {
  const script: EchoScript = { resources: { shared: [], exclusive: [] }, commands: [], cleanup: [] };
  let inCleanup = false;
  toLines(parameters).forEach((raw, index) => {
    const line = index + 1;
    const fields = (raw.split('#', 1)[0] ?? '').split(/\s+/).filter((field) => field !== '');
    const [keyword, ...args] = fields;
    if (keyword === undefined) return;
    const target = inCleanup ? script.cleanup : script.commands;
    switch (keyword.toLowerCase()) {
      case 'cleanup':
        inCleanup = true;
        return;
      case 'use': {
        if (inCleanup) throw new EchoSyntaxError(line, 'USE is not allowed in cleanup section');
        if (args.length < 2) throw new EchoSyntaxError(line, `USE expects 2 arguments (${args.length} provided)`);
        const mode = (args[0] ?? '').toLowerCase();
        if (mode !== 'shared' && mode !== 'exclusive') {
          throw new EchoSyntaxError(line, 'USE mode should be "shared" or "exclusive"');
        }
        script.resources[mode].push(...args.slice(1));
        return;
      }
      case 'echo':
        if (args.length < 1) throw new EchoSyntaxError(line, 'ECHO expects an argument to output');
        target.push({ kind: 'echo', line, text: args.join(' ') });
        return;
      case 'sleep': {
        if (args.length !== 1) throw new EchoSyntaxError(line, `SLEEP expects 1 argument (${args.length} provided)`);
        const value = args[0] ?? '';
        if (!DECIMAL.test(value)) throw new EchoSyntaxError(line, 'SLEEP argument must be a number');
        const seconds = Number(value);
        if (seconds < 0) throw new EchoSyntaxError(line, 'SLEEP argument must not be negative');
        if (!Number.isFinite(seconds)) throw new EchoSyntaxError(line, 'SLEEP argument must be a finite number');
        target.push({ kind: 'sleep', line, seconds });
        return;
      }
      case 'return': {
        if (args.length !== 1) throw new EchoSyntaxError(line, `RETURN expects 1 argument (${args.length} provided)`);
        const value = args[0] ?? '';
        if (!INTEGER.test(value)) throw new EchoSyntaxError(line, 'RETURN argument must be an integer');
        const code = Number(value);
        // A process exit status is one byte: a larger value would be reported wrapped.
        if (code < 0 || code > 255) throw new EchoSyntaxError(line, 'RETURN argument must be between 0 and 255');
        target.push({ kind: 'return', line, value: code });
        return;
      }
      case 'raise':
        target.push({ kind: 'raise', line });
        return;
      case 'log': {
        if (args.length < 2) throw new EchoSyntaxError(line, `LOG expects 2 arguments (${args.length} provided)`);
        const level = (args[0] ?? '').toUpperCase();
        if (!isLogLevel(level)) throw new EchoSyntaxError(line, `LOG level must be one of (${LOG_LEVELS.join(', ')})`);
        target.push({ kind: 'log', line, level, text: args.slice(1).join(' ') });
        return;
      }
      default:
        // The problem and the line, not the text: parameters never reach messages or logs.
        throw new EchoSyntaxError(line, `Invalid command (expected one of ${KEYWORDS.join(', ')})`);
    }
  });
  return script;
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
