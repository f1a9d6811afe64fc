/**
 * The files of tasks, read straight from their working directories: what the files service runs
 * (root with CAP_DAC_READ_SEARCH), and the runner itself when it is root. Every name is opened
 * relative to the directory opened before it (safe-open.ts), and every entry must belong to the
 * task's user: a symbolic link, a FIFO, a socket, a device, or a hard link to a file of someone else
 * is neither listed nor read, whatever the task plants or renames while it is walked.
 */
import type { Stats } from 'node:fs';
import { opendir, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { resolveRange } from './byte-range.js';
import { exactLength } from './exact-length.js';
import { MAX_PATH_BYTES, splitFilePath } from './file-paths.js';
import { kindOf, look, lookAtDirectory, lookWithoutOpening, notAFile, reopenForReading, type Opened } from './safe-open.js';
import { removeDirectory } from './removal.js';
import {
  FilesError,
  type FileDownload,
  type FileEntry,
  type FileListing,
  type ListLimits,
  type ReadRequest,
  type TaskFiles,
} from './task-files.js';
import { TASK_ID_PATTERN, TASK_STATE_DIRECTORY } from '../tasks/unit-names.js';

/**
 * Where StateDirectory=tessia-tasks/<id> is: with DynamicUser, systemd keeps it in /var/lib/private
 * (root's alone, 0700) and links /var/lib/tessia-tasks/<id> to it; with a machine's fixed user it
 * is /var/lib/tessia-tasks/<id> itself (systemd.exec(5), "RuntimeDirectory=").
 */
export const TASK_DIRECTORY_ROOTS = [`/var/lib/private/${TASK_STATE_DIRECTORY}`, `/var/lib/${TASK_STATE_DIRECTORY}`] as const;

export class TaskDirectories implements TaskFiles {
  /** `roots`: where working directories are looked for, in order (tests: directories of their own). */
  constructor(private readonly roots: readonly string[] = TASK_DIRECTORY_ROOTS) {}

  async list(taskId: string, limits: ListLimits): Promise<FileListing> {
    const base = await this.openBase(taskId);
    if (!base) return { files: [], truncated: false };
    const walk = { files: [] as FileEntry[], examined: 0, truncated: false, owner: base.stats.uid, limits, bytes: 0 };
    try {
      await this.walk(base.handle, '', 0, walk);
    } finally {
      await base.handle.close();
    }
    walk.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { files: walk.files, truncated: walk.truncated };
  }

  async read(request: ReadRequest): Promise<FileDownload> {
    const components = splitFilePath(request.path);
    const base = await this.openBase(request.taskId);
    if (!base) throw new FilesError('FILE_NOT_FOUND', `task ${request.taskId} has no working directory (it never ran, or it was removed)`);
    const owner = base.stats.uid;
    // Always the one descriptor held open: the directory walked so far, then the file.
    let held: Opened | undefined = base;
    try {
      for (const [index, name] of components.entries()) {
        const path = components.slice(0, index + 1).join('/');
        const found: Opened | undefined = await look(held.handle, name);
        await held.handle.close();
        held = undefined;
        if (!found) throw new FilesError('FILE_NOT_FOUND', `${path}: no such file in the task's directory`);
        held = found;
        const last = index === components.length - 1;
        if (!(last ? found.stats.isFile() : found.stats.isDirectory())) throw notAFile(path, kindOf(found.stats));
        if (found.stats.uid !== owner) throw notAFile(path, "another user's file");
      }
    } catch (error) {
      await held?.handle.close().catch(() => undefined);
      throw error;
    }
    // splitFilePath gives at least one component: what is held is the file.
    const found = held;
    try {
      const size = found.stats.size;
      const { start, length } = request.range ? resolveRange(request.range, size) : { start: 0, length: size };
      if (length > request.maxBytes) {
        throw new FilesError(
          'FILE_TOO_LARGE',
          `${request.path}: ${length} bytes${request.range ? ' asked for' : ''}, more than the ${request.maxBytes} served at once (limits.maxFileBytes): ask for a part with Range`,
        );
      }
      const readable = await reopenForReading(found);
      return {
        size,
        modified: found.stats.mtime.toISOString(),
        start,
        length,
        partial: request.range !== undefined,
        body: bytesOf(readable, start, length),
      };
    } finally {
      await found.handle.close();
    }
  }

  async remove(taskId: string): Promise<boolean> {
    checkTaskId(taskId);
    let removed = false;
    for (const root of this.roots) removed = (await removeDirectory(root, taskId)) || removed;
    return removed;
  }

  close(): void {
    // Holds nothing between calls.
  }

  private async openBase(taskId: string): Promise<Opened | undefined> {
    checkTaskId(taskId);
    for (const root of this.roots) {
      const base = await lookAtDirectory(`${root}/${taskId}`);
      if (base) return base;
    }
    return undefined;
  }

  private async walk(
    directory: FileHandle,
    prefix: string,
    depth: number,
    walk: { files: FileEntry[]; examined: number; truncated: boolean; owner: number; limits: ListLimits; bytes: number },
  ): Promise<void> {
    // Entries a few at a time: a directory of a million names is not read whole.
    const entries = await opendir(`/proc/self/fd/${directory.fd}`, { bufferSize: 64 });
    for await (const entry of entries) {
      if (walk.examined >= walk.limits.maxEntries) {
        walk.truncated = true;
        break;
      }
      walk.examined += 1;
      const path = `${prefix}${entry.name}`;
      // A path no download could name is not listed; and the listing's names are bounded as a whole
      // (as JSON, a control character takes 6 bytes): long names cannot make it huge.
      if (Buffer.byteLength(path) > MAX_PATH_BYTES) continue;
      walk.bytes += JSON.stringify(path).length;
      if (walk.bytes > MAX_LISTING_NAME_BYTES) {
        walk.truncated = true;
        break;
      }
      const stats = await lookWithoutOpening(directory, entry.name);
      if (stats?.uid !== walk.owner) continue;
      if (stats.isFile()) walk.files.push(entryOf(path, 'file', stats));
      if (!stats.isDirectory()) continue;
      if (depth >= walk.limits.maxDepth) {
        // Listed, not walked into.
        walk.files.push(entryOf(path, 'directory', stats));
        walk.truncated = true;
        continue;
      }
      const child = await look(directory, entry.name);
      if (!child) continue;
      try {
        // Looked at again once held: it may have been swapped for something else since the lstat.
        if (!child.stats.isDirectory() || child.stats.uid !== walk.owner) continue;
        walk.files.push(entryOf(path, 'directory', child.stats));
        await this.walk(child.handle, `${path}/`, depth + 1, walk);
      } finally {
        await child.handle.close();
      }
      if (walk.truncated && (walk.examined >= walk.limits.maxEntries || walk.bytes > MAX_LISTING_NAME_BYTES)) break;
    }
  }
}

/** The names of one listing, as JSON, at most: 4 MiB (10 000 entries of 400 bytes). */
const MAX_LISTING_NAME_BYTES = 4 * 2 ** 20;

function checkTaskId(taskId: string): void {
  if (!TASK_ID_PATTERN.test(taskId)) throw new FilesError('INVALID_FILE_PATH', 'not a task id');
}

function entryOf(path: string, type: FileEntry['type'], stats: Stats): FileEntry {
  return { path, type, size: stats.size, modified: stats.mtime.toISOString() };
}

/** `length` bytes from `start`, exactly; the file is closed when they are read or the reading stops. */
function bytesOf(handle: FileHandle, start: number, length: number) {
  const checked = exactLength(length);
  if (length === 0) {
    void handle.close();
    checked.end();
    return checked;
  }
  const source = handle.createReadStream({ start, end: start + length - 1, autoClose: true });
  pipeline(source, checked, () => undefined);
  return checked;
}
