/**
 * The Range header of a download (RFC 9110, 14.2): one byte range, or none. Anything else — several
 * ranges, another unit, a malformed value — is ignored and the whole file served, as the RFC
 * allows; so is a Range sent with If-Range, since the runner gives no validator to compare.
 */
import type { ByteRange } from '../files/task-files.js';

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

export function parseRangeHeader(range: string | undefined, ifRange: string | undefined): ByteRange | undefined {
  if (range === undefined || ifRange !== undefined) return undefined;
  const match = SINGLE_RANGE.exec(range.trim());
  const [, first = '', last = ''] = match ?? [];
  if (!match || (first === '' && last === '')) return undefined;
  // Beyond what a file can be: as large as a number stays exact (a start there is past any file's end).
  const number = (digits: string) => Math.min(Number(digits), Number.MAX_SAFE_INTEGER);
  if (first === '') return { suffix: number(last) };
  return last === '' ? { start: number(first) } : { start: number(first), end: number(last) };
}
