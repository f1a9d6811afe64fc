import { readFileSync, readlinkSync } from 'node:fs';

/** The sockets systemd passed us (LISTEN_FDS, socket activation), as file descriptors. */
export function activationFds(environment: NodeJS.ProcessEnv = process.env): number[] {
  const count = Number(environment['LISTEN_FDS']);
  const pid = Number(environment['LISTEN_PID']);
  if (!Number.isInteger(count) || count <= 0 || pid !== process.pid) return [];
  return Array.from({ length: count }, (_, index) => 3 + index);
}

/**
 * Whether a passed descriptor is a Unix socket (else TCP): its inode is among the kernel's Unix
 * sockets. Known before node opens a listener on it, so the listener is made for what it is.
 */
export function isUnixSocket(fd: number, proc = '/proc/self'): boolean {
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${proc}/fd/${fd}`))?.[1];
  if (inode === undefined) return false;
  // Columns: Num RefCount Protocol Flags Type St Inode [Path]
  return readFileSync(`${proc}/net/unix`, 'utf8')
    .split('\n')
    .slice(1)
    .some((line) => line.trim().split(/\s+/)[6] === inode);
}
