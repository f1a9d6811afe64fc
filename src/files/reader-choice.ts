import type { Logger } from 'pino';
import { FilesClient } from './client.js';
import { TaskDirectories } from './task-directories.js';
import type { TaskFiles } from './task-files.js';

/**
 * Through the files service when the config names its socket (the package does): the runner's
 * user cannot read tasks' directories. Else in this process, which must be allowed to (root).
 */
export function taskFilesFor(filesSocket: string | null, log: Logger): TaskFiles {
  if (filesSocket !== null) {
    log.info({ socket: filesSocket }, "tasks' files are read by the files service");
    return new FilesClient(filesSocket);
  }
  if (process.getuid?.() !== 0) {
    log.warn("tasks.filesSocket is not set and the runner is not root: reading tasks' files will be refused");
  }
  return new TaskDirectories();
}
