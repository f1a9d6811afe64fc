/**
 * Why the store could not write, read from the error SQLite (or Node, for the state directory
 * itself) gave: its file system is full, failing, or read-only. Those are the surroundings' faults,
 * not the runner's: the write is refused whole (one transaction), the client is told to come back
 * (503 STORE_UNWRITABLE), and the write that mattered is done again once the store takes writes.
 * Any other error (a constraint, a bug) is not one of these and stays what it is.
 */
import { TaskError } from './errors.js';

export type StoreWriteFault = 'full' | 'io' | 'read-only';

/**
 * What an error says of the file system under the store, or null when it is not about that.
 * SQLite reports a full disk as SQLITE_FULL when a write comes short, but as SQLITE_IOERR_SHMSIZE
 * when its shared-memory file cannot grow (a store opened on a full disk) and as
 * SQLITE_IOERR_FSYNC/_WRITE when the kernel says ENOSPC late, on a flush.
 */
export function storeWriteFault(error: unknown): StoreWriteFault | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  switch (code) {
    case 'SQLITE_FULL':
    case 'SQLITE_IOERR_SHMSIZE':
    case 'ENOSPC':
    case 'EDQUOT':
      return 'full';
    case 'SQLITE_READONLY':
    case 'EROFS':
      return 'read-only';
    case 'SQLITE_IOERR':
    case 'EIO':
      return 'io';
    default:
      if (code.startsWith('SQLITE_READONLY_')) return 'read-only';
      if (code.startsWith('SQLITE_IOERR_')) return 'io';
      return null;
  }
}

const WHAT: Record<StoreWriteFault, (directory: string) => string> = {
  full: (directory) => `no space left for the task store under ${directory}`,
  io: (directory) => `the task store under ${directory} cannot be written: an I/O error`,
  'read-only': (directory) => `the task store under ${directory} is read-only (its file system was mounted or remounted read-only)`,
};

/** A write the store refused because of its file system; nothing of it was written. */
export class StoreUnwritableError extends TaskError {
  constructor(
    readonly fault: StoreWriteFault,
    readonly directory: string,
    cause: unknown,
  ) {
    const code = (cause as { code?: unknown }).code;
    const why = cause instanceof Error ? cause.message : String(cause);
    super('STORE_UNWRITABLE', `${WHAT[fault](directory)} (${typeof code === 'string' ? `${code}: ` : ''}${why})`, { cause });
    this.name = 'StoreUnwritableError';
  }

  /** The same fault, said of what it kept from happening ("task 3f9c2a1b not started"). */
  refusing(what: string): TaskError {
    return new TaskError('STORE_UNWRITABLE', `${what}: ${this.message}; try again once the store takes writes`, { cause: this });
  }
}

/** `error` as a StoreUnwritableError when the file system is at fault; else undefined. */
export function asStoreUnwritable(error: unknown, directory: string): StoreUnwritableError | undefined {
  if (error instanceof StoreUnwritableError) return error;
  const fault = storeWriteFault(error);
  return fault === null ? undefined : new StoreUnwritableError(fault, directory, error);
}
