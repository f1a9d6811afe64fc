/** How errors read: one message from anything thrown, one sentence from a schema's complaints. */
import type { z } from 'zod';

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Each problem as `key.path: message` (unknown keys named), for the API's 400s and the config's errors. */
export function describeIssues(error: z.ZodError, emptyPath = ''): string[] {
  return error.issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join('.') : emptyPath;
    const message =
      issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.map((name) => JSON.stringify(name)).join(', ')}` : issue.message;
    return key ? `${key}: ${message}` : message;
  });
}
