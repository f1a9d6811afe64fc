/**
 * Opening a name inside a directory held open, never following a symbolic link and never opening
 * anything but to look at it. Node has no openat(): `/proc/self/fd/<dirfd>/<name>` is the same
 * thing, since the kernel resolves the magic link to the directory the descriptor holds, wherever
 * it has been moved since, and then looks up `name` in it. With O_PATH the name is only looked at
 * (a FIFO is not opened, a device's driver is not called); O_NOFOLLOW makes a symbolic link the
 * link itself. A file is opened for reading only after that look, through its own O_PATH
 * descriptor: the same inode, whatever the task renames meanwhile.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { FilesError } from './task-files.js';

/** Linux's O_PATH (asm-generic, which x86, arm, ppc and s390 use); node's fs.constants lacks it. */
const O_PATH = 0o10000000;
const LOOK = O_PATH | constants.O_NOFOLLOW;
/** O_NONBLOCK: should a FIFO ever get here, the open does not wait for a writer. */
const READ = constants.O_RDONLY | constants.O_NONBLOCK;

/** The path that names `name` in the directory `directory` holds. */
export function inside(directory: FileHandle, name: string): string {
  return `/proc/self/fd/${directory.fd}/${name}`;
}

export interface Opened {
  handle: FileHandle;
  stats: Stats;
}

/** `name` in `directory`, held by an O_PATH descriptor, with what fstat says of it; undefined when there is none. */
export async function look(directory: FileHandle, name: string): Promise<Opened | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(inside(directory, name), LOOK);
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return { handle, stats: await handle.stat() };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A directory by its absolute path, its last component not followed; undefined when it is not one. */
export async function lookAtDirectory(path: string): Promise<Opened | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, LOOK | constants.O_DIRECTORY);
  } catch (error) {
    // ENOTDIR: a file, or a symbolic link (DynamicUser's /var/lib/tessia-tasks/<id>).
    if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errno(error) ?? '')) return undefined;
    throw error;
  }
  const stats = await handle.stat().catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  return { handle, stats };
}

/** The file an O_PATH descriptor holds, opened for reading: the same inode, checked. */
export async function reopenForReading(looked: Opened): Promise<FileHandle> {
  const handle = await open(`/proc/self/fd/${looked.handle.fd}`, READ);
  const stats = await handle.stat();
  if (stats.ino !== looked.stats.ino || stats.dev !== looked.stats.dev) {
    await handle.close();
    throw new Error('the file changed between its check and its opening');
  }
  return handle;
}

/** What an entry is, without following it (for listing: the directory is held open). */
export async function lookWithoutOpening(directory: FileHandle, name: string): Promise<Stats | undefined> {
  try {
    return await lstat(inside(directory, name));
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  }
}

export function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'a device';
}

export function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** A component that is there but cannot be walked through or served. */
export function notAFile(path: string, what: string): FilesError {
  return new FilesError('NOT_A_FILE', `${path} is ${what}: only regular files of the task in its directory are served`);
}
