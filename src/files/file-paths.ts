/**
 * A file's path in a task's working directory, checked before anything is opened: each component
 * a plain name, so that nothing but the walk from the directory, one name at a time, decides where
 * it leads (see safe-open.ts for what is checked on the way).
 */
import { FilesError } from './task-files.js';

/** Linux's PATH_MAX and NAME_MAX, in bytes. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/** Why a component is not a plain name, or undefined when it is one. */
export function componentProblem(name: string): string | undefined {
  if (name === '') return 'an empty component';
  if (name === '.' || name === '..') return `a "${name}" component`;
  if (name.includes('/')) return 'a "/" inside a component (%2F)';
  if (name.includes('\0')) return 'a NUL character';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `a component longer than ${MAX_NAME_BYTES} bytes`;
  return undefined;
}

/** The components of a `/`-separated path (as decoded segments, or one string): all plain names. */
export function splitFilePath(path: string | readonly string[]): string[] {
  const components = typeof path === 'string' ? path.split('/') : [...path];
  const length = components.reduce((sum, name) => sum + Buffer.byteLength(name) + 1, 0);
  if (components.length === 0 || length > MAX_PATH_BYTES) {
    throw new FilesError('INVALID_FILE_PATH', `a file path is 1 to ${MAX_PATH_BYTES} bytes`);
  }
  for (const name of components) {
    const problem = componentProblem(name);
    if (problem !== undefined) {
      throw new FilesError('INVALID_FILE_PATH', `the file path has ${problem}: it must name a file inside the task's directory`);
    }
  }
  return components;
}
