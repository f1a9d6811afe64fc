/**
 * A task's files: what it left in its working directory (StateDirectory=tessia-tasks/<id>), which
 * stays after the task has ended.
 *
 * - **working directory**: `/var/lib/private/tessia-tasks/<id>` for a task of a dynamic user,
 *   `/var/lib/tessia-tasks/<id>` for one of a machine's fixed user; owned by the task's user.
 * - **path**: where a file is in that directory, as `/`-separated components, each a plain name
 *   (never empty, `.`, `..`, nor holding `/` or NUL).
 * - **file**: a regular file owned by the task's user; symbolic links, FIFOs, sockets, devices and
 *   files of another owner (hard links to them) are never opened for reading nor listed.
 * - **range**: the bytes of a file asked for (RFC 9110 byte ranges), resolved against its size.
 *
 * The runner reads them through the files service (root with CAP_DAC_READ_SEARCH, since the task's
 * user owns them), or in its own process when it is root (npm start, the tests).
 */
import type { Readable } from 'node:stream';
import { ERROR_CODES, type ErrorCode } from '../error-codes.js';

export type FileType = 'file' | 'directory';

export interface FileEntry {
  /** Relative to the working directory, `/`-separated. */
  path: string;
  type: FileType;
  /** Bytes (a directory: what the file system says of it). */
  size: number;
  modified: string;
}

export interface FileListing {
  files: FileEntry[];
  /** More entries (or deeper directories) than the limits let it walk. */
  truncated: boolean;
}

/** A byte range as a client asked for it, before the file's size is known. */
export type ByteRange = { start: number; end?: number | undefined } | { suffix: number };

export interface ListLimits {
  /** Directory entries examined at most (listed or not). */
  maxEntries: number;
  /** Directories below the working directory walked into at most. */
  maxDepth: number;
}

export interface ReadRequest {
  taskId: string;
  path: string;
  range?: ByteRange;
  /** The most bytes served at once: a whole file, or a range of it. */
  maxBytes: number;
}

export interface FileDownload {
  /** The whole file's size. */
  size: number;
  modified: string;
  /** The first byte served, and how many: exactly these bytes come out of `body`, or it fails. */
  start: number;
  length: number;
  /** Whether a range was served (206) or the whole file (200). */
  partial: boolean;
  body: Readable;
}

export interface TaskFiles {
  /** The working directory's files and directories; none when it does not exist. */
  list(taskId: string, limits: ListLimits): Promise<FileListing>;
  read(request: ReadRequest, signal?: AbortSignal): Promise<FileDownload>;
  /** Removes the working directory and all in it; false when there was none. */
  remove(taskId: string): Promise<boolean>;
  close(): void;
}

/** The codes of the catalog a files operation may fail with (and the files service answer). */
export const FILES_ERROR_CODES = [
  'INVALID_FILE_PATH',
  'FILE_NOT_FOUND',
  'NOT_A_FILE',
  'FILE_TOO_LARGE',
  'RANGE_NOT_SATISFIABLE',
  'FILES_UNAVAILABLE',
] as const satisfies readonly ErrorCode[];
export type FilesErrorCode = (typeof FILES_ERROR_CODES)[number];

export function isFilesErrorCode(value: unknown): value is FilesErrorCode {
  return (FILES_ERROR_CODES as readonly unknown[]).includes(value);
}

export class FilesError extends Error {
  constructor(
    readonly code: FilesErrorCode,
    message: string = ERROR_CODES[code].summary,
    /** RANGE_NOT_SATISFIABLE: the file's size, for Content-Range: bytes *\/size. */
    readonly size?: number,
  ) {
    super(message);
    this.name = 'FilesError';
  }
}
