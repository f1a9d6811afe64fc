import type { RequestHandler } from 'express';
import { HttpError } from './errors.js';

/** Refuses bodies nested deeper than `maxDepth` (checked without recursion). */
export function limitJsonDepth(maxDepth: number): RequestHandler {
  return (request, _response, next) => {
    if (depthOver(request.body, maxDepth)) {
      next(new HttpError('TOO_DEEP', `the request body nests deeper than ${maxDepth} levels`));
      return;
    }
    next();
  };
}

function depthOver(root: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [value, depth] = top;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1]);
  }
  return false;
}
