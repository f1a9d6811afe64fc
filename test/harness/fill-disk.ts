/**
 * Filling a file system to its last byte, for the full-disk tests: the test itself
 * (test/integration/full-disk.test.ts) and the runner's fill-after-record fault (serve-with-faults.ts).
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** The file fill-after-record writes in the runner's state directory: removing it frees the space. */
export const FAULT_FILLER = 'fault-filler';

/** Appends to `file` until its file system has not a byte left (ENOSPC for a single byte). */
export function fillUntilFull(file: string): void {
  const fd = openSync(file, 'a');
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const chunk = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
}
