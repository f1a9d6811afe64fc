/**
 * How a task's parameters reach it: a file only the runner can read, which systemd opens as the
 * task's standard input when it starts the unit, and which the runner deletes as soon as the start
 * job is done. The task keeps the open file; nothing else can reach it.
 *
 * Not a systemd credential: SetCredential= data is readable by any local user over D-Bus for as
 * long as the unit exists (systemd.exec(5)), and every LoadCredential=/SetCredential= unit adds a
 * mount under /run/credentials to PID 1's namespace, which each sandboxed start copies — starts
 * slowed from 35 ms to 440 ms with 300 such units alive (docs/benchmarks.md).
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export class ParameterHandoff {
  constructor(readonly directory: string) {}

  /** Creates the directory (runner only) and removes files left by a runner that died mid-start. */
  async open(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.directory)) await rm(join(this.directory, name), { force: true });
  }

  // Synchronous on purpose: a small file on a tmpfs is written and unlinked in microseconds, while
  // the promise versions cost a thread-pool round trip each (and rm() an lstat first): ~1 ms a start.

  /** Writes the parameters of a task (or a check) about to start; returns the path systemd opens as its stdin. */
  prepare(name: string, parameters: unknown): string {
    const path = this.pathOf(name);
    writeFileSync(path, JSON.stringify(parameters ?? null), { mode: 0o600, flag: 'wx' });
    return path;
  }

  /** After the start job, whatever its result: the task has the file open, or never will. */
  release(name: string): void {
    try {
      unlinkSync(this.pathOf(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** A file beside the parameters (a check's reason): removed with them when the directory is opened again. */
  siblingPath(name: string): string {
    return join(this.directory, name);
  }

  private pathOf(name: string): string {
    return join(this.directory, `${name}.json`);
  }
}
