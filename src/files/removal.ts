/**
 * Removing a task's working directory and all in it, as the task left it: a tree its user owns, in
 * which it may have planted anything, and may still be renaming things if one of its processes
 * outlived it (a machine's fixed user). Every name is unlinked in a directory held open, never
 * through a path a symbolic link could redirect; a symbolic link is removed, never followed.
 */
import { randomBytes } from 'node:crypto';
import { rmdir, unlink, opendir, rename, type FileHandle } from 'node:fs/promises';
import { errno, inside, look, lookAtDirectory, lookWithoutOpening } from './safe-open.js';

/**
 * Directories held open at once while emptying: deeper ones are moved up to the top of the tree
 * and emptied from there, so a tree of any depth is removed with this many descriptors.
 */
const MAX_HELD = 32;
/** Passes over the top directory: a process of the task's user still filling it is not outrun for ever. */
const MAX_PASSES = 10_000;

/** Removes `root/<taskId>` (a directory, or the symbolic link DynamicUser leaves); false when neither is there. */
export async function removeDirectory(root: string, taskId: string): Promise<boolean> {
  const path = `${root}/${taskId}`;
  const top = await lookAtDirectory(path);
  if (!top) {
    try {
      // Not a directory: DynamicUser's link to /var/lib/private/tessia-tasks/<id>, or nothing.
      await unlink(path);
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT') return false;
      throw error;
    }
  }
  try {
    const moved = { count: 0 };
    // Moved-up directories land in the top one: empty it until a pass finds it empty.
    for (let pass = 0; pass < MAX_PASSES && (await emptyDirectory(top.handle, top.handle, 0, moved)); pass++);
  } finally {
    await top.handle.close();
  }
  // `root` is root's: the path to the emptied directory is what it was.
  await rmdir(path);
  return true;
}

/** Removes what is in `directory`; true when something was there (a pass more may be needed). */
async function emptyDirectory(top: FileHandle, directory: FileHandle, depth: number, moved: { count: number }): Promise<boolean> {
  let found = false;
  // Names read before any is removed: unlinking while reading a directory may skip entries.
  const names: string[] = [];
  for await (const entry of await opendir(`/proc/self/fd/${directory.fd}`, { bufferSize: 256 })) {
    names.push(entry.name);
    if (names.length >= 4096) break;
  }
  for (const name of names) {
    found = true;
    const stats = await lookWithoutOpening(directory, name);
    if (!stats) continue;
    if (!stats.isDirectory()) {
      await unlink(inside(directory, name)).catch(ignoreGone);
      continue;
    }
    if (depth + 1 >= MAX_HELD) {
      // A name the task cannot have planted: random, and another one if it is taken after all.
      moved.count += 1;
      await renameAside(inside(directory, name), top);
      continue;
    }
    const child = await look(directory, name);
    if (!child) continue;
    try {
      if (!child.stats.isDirectory()) {
        await unlink(inside(directory, name)).catch(ignoreGone);
        continue;
      }
      while (await emptyDirectory(top, child.handle, depth + 1, moved));
    } finally {
      await child.handle.close();
    }
    await rmdir(inside(directory, name)).catch(ignoreGone);
  }
  return found;
}

function ignoreGone(error: unknown): void {
  if (errno(error) !== 'ENOENT') throw error;
}

/** Moves a directory up to `top` under a fresh random name (tries a few: a task may plant names). */
async function renameAside(from: string, top: FileHandle): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, inside(top, `.tessia-removing-${randomBytes(8).toString('hex')}`));
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= 8 || (code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR')) throw error;
    }
  }
}
