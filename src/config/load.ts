import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
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
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    return `  ${key}: ${issue.message}`;
  });
  throw new ConfigError(`${source} is invalid:\n${problems.join('\n')}`);
}

export async function loadConfig(path: string | undefined): Promise<Config> {
  if (path === undefined) return validateConfig({});
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  return validateConfig(document, path);
}
