import type { z } from 'zod';
import { TaskError } from '../tasks/errors.js';

/** Validates a request part; a mismatch is a 400 naming each problem. */
export function parseRequest<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    return key ? `${key}: ${issue.message}` : issue.message;
  });
  throw new TaskError('INVALID_REQUEST', `invalid ${what}: ${problems.join('; ')}`);
}
