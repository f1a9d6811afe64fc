import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import type { z } from 'zod';
import { describeIssues, messageOf } from '../errors.js';
import { mergeSources, type ConfigSource } from './drop-ins.js';
import { ConfigSchema, type Config } from './schema.js';

/** Drop-ins beside the main file: `<its directory>/config.d/*.yaml`, merged over it in name order. */
export const DROP_IN_DIRECTORY = 'config.d';

export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/**
 * Validates a parsed document; errors name the key (machines.echo.limits.memoryMax: …), and the file
 * that set it when `sourceOf` knows (drop-ins).
 */
export function validateConfig(
  document: unknown,
  source = 'config',
  sourceOf?: (path: readonly PropertyKey[]) => string | undefined,
): Config {
  const parsed = ConfigSchema.safeParse(document ?? {});
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error, '(top level)').map((problem, index) => {
    const where = sourceOf?.(issuePath(parsed.error.issues[index]));
    return where === undefined ? `  ${problem}` : `  ${problem} (in ${where})`;
  });
  throw new ConfigError(`${source} is invalid:\n${problems.join('\n')}`);
}

/** Where an issue is: an unknown key's own path, not its mapping's. */
function issuePath(issue: z.core.$ZodIssue | undefined): PropertyKey[] {
  if (issue === undefined) return [];
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) return [...issue.path, issue.keys[0]];
  return issue.path;
}

/** Command-line values that take the place of the file's, validated with it. */
export type ConfigOverrides = Partial<Pick<Config, 'listen' | 'stateDir'>>;

/**
 * The config file at `path`, with the drop-ins of `config.d/` beside it merged over it (drop-ins.ts),
 * and the command line's values over all of them.
 */
export async function loadConfig(path: string | undefined, overrides: ConfigOverrides = {}): Promise<Config> {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  if (path === undefined) return validateConfig(defined, 'the command line');
  const sources = [await readSource(path), ...(await readDropIns(join(dirname(path), DROP_IN_DIRECTORY)))];
  const merged = mergeSources(sources);
  const source = sources.length > 1 ? `${path} with ${sources.length - 1} drop-in(s) of ${join(dirname(path), DROP_IN_DIRECTORY)}` : path;
  return validateConfig({ ...merged.document, ...defined }, source, sources.length > 1 ? merged.sourceOf : undefined);
}

async function readSource(path: string): Promise<ConfigSource> {
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
  return { source: path, document: (document ?? {}) as Record<string, unknown> };
}

/** The directory's `*.yaml` files (not hidden ones), in byte order of their names; none when it does not exist. */
async function readDropIns(directory: string): Promise<ConfigSource[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigError(`cannot read ${directory}: ${messageOf(error)}`, { cause: error });
  }
  const files = names.filter((name) => name.endsWith('.yaml') && !name.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(files.map((name) => readSource(join(directory, name))));
}

/** $CONFIGURATION_DIRECTORY/config.yaml, else /etc/tessia-task-runner/config.yaml when present, else none. */
export function defaultConfigPath(environment: NodeJS.ProcessEnv = process.env): string | undefined {
  const directory = environment['CONFIGURATION_DIRECTORY']?.split(':')[0];
  const candidates = [directory === undefined ? undefined : join(directory, 'config.yaml'), '/etc/tessia-task-runner/config.yaml'];
  return candidates.find((path): path is string => path !== undefined && existsSync(path));
}
