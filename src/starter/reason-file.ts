/**
 * A check's stderr: a file systemd creates (as root, before the sandbox) in the starter's own
 * directory. Only its end matters — the reason is the last line — and the check may have written
 * up to the unit's LimitFSIZE= before it was stopped.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';

/** Read from the end of the file: enough for a line of REASON_MAX_CHARS in any UTF-8. */
const TAIL_BYTES = 4096;

/** The end of the file as text, and the file removed; "" when there is none. */
export function takeReasonFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}
