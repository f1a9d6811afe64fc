import { z } from 'zod';
import { describeIssues } from '../errors.js';
import { TaskError } from '../tasks/errors.js';

/** Validates a request part; a mismatch is a 400 naming each problem. */
export function parseRequest<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  throw new TaskError('INVALID_REQUEST', `invalid ${what}: ${describeIssues(parsed.error).join('; ')}`);
}

/** A yes/no query value, as URLs write them. */
export const queryBoolean = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
