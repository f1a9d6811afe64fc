import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describeIssues, messageOf } from '../errors.js';
import { ConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** Validates a parsed document; errors name the key (machines.echo.limits.memoryMax: …). */
export function validateConfig(document: unknown, source = 'config'): Config {
  const parsed = ConfigSchema.safeParse(document ?? {});
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error, '(top level)').map((problem) => `  ${problem}`);
  throw new ConfigError(`${source} is invalid:\n${problems.join('\n')}`);
}

/** Command-line values that take the place of the file's, validated with it. */
export type ConfigOverrides = Partial<Pick<Config, 'listen' | 'stateDir'>>;

export async function loadConfig(path: string | undefined, overrides: ConfigOverrides = {}): Promise<Config> {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  if (path === undefined) return validateConfig(defined, 'the command line');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path}: ${messageOf(error)}`, { cause: error });
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid YAML: ${messageOf(error)}`, { cause: error });
  }
  if (document !== null && document !== undefined && (typeof document !== 'object' || Array.isArray(document))) {
    throw new ConfigError(`${path} is invalid:\n  (top level): expected a mapping of keys`);
  }
  return validateConfig({ ...(document as object | null), ...defined }, path);
}

/** $CONFIGURATION_DIRECTORY/config.yaml, else /etc/tessia-task-runner/config.yaml when present, else none. */
export function defaultConfigPath(environment: NodeJS.ProcessEnv = process.env): string | undefined {
  const directory = environment['CONFIGURATION_DIRECTORY']?.split(':')[0];
  const candidates = [directory === undefined ? undefined : join(directory, 'config.yaml'), '/etc/tessia-task-runner/config.yaml'];
  return candidates.find((path): path is string => path !== undefined && existsSync(path));
}
