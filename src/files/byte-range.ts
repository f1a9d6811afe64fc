/** A byte range asked for, resolved against the file's size (RFC 9110, 14.1.2). */
import { FilesError, type ByteRange } from './task-files.js';

export interface ResolvedRange {
  start: number;
  length: number;
}

/** The bytes to serve; RANGE_NOT_SATISFIABLE when none of the file is in the range. */
export function resolveRange(range: ByteRange, size: number): ResolvedRange {
  if ('suffix' in range) {
    if (range.suffix === 0 || size === 0) throw unsatisfiable(size);
    const length = Math.min(range.suffix, size);
    return { start: size - length, length };
  }
  if (range.end !== undefined && range.end < range.start) throw unsatisfiable(size);
  if (range.start >= size) throw unsatisfiable(size);
  const last = Math.min(range.end ?? size - 1, size - 1);
  return { start: range.start, length: last - range.start + 1 };
}

function unsatisfiable(size: number): FilesError {
  return new FilesError('RANGE_NOT_SATISFIABLE', `the range asked for is not within the file (${size} bytes)`, size);
}
