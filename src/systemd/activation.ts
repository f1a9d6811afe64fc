import { readFileSync, readlinkSync } from 'node:fs';

/** The sockets systemd passed us (LISTEN_FDS, socket activation), as file descriptors. */
export function activationFds(environment: NodeJS.ProcessEnv = process.env): number[] {
  const count = Number(environment['LISTEN_FDS']);
  const pid = Number(environment['LISTEN_PID']);
  if (!Number.isInteger(count) || count <= 0 || pid !== process.pid) return [];
  return Array.from({ length: count }, (_, index) => 3 + index);
}

/**
 * What a passed descriptor is, known before node opens a listener on it, so the listener is made
 * for what it is: TCP when its inode is among the kernel's TCP sockets (/proc/self/net/tcp and tcp6:
 * numbers only), else Unix when it is among the Unix ones. The TCP tables are read first: the Unix
 * table prints socket paths raw, and any local user can name a socket so that its path reads as
 * another line of the table.
 */
export function socketKind(fd: number, proc = '/proc/self'): 'tcp' | 'unix' | undefined {
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${proc}/fd/${fd}`))?.[1];
  if (inode === undefined) return undefined;
  // Columns: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
  const tcp = ['tcp', 'tcp6'].some((table) => inodeColumn(`${proc}/net/${table}`, 9).has(inode));
  if (tcp) return 'tcp';
  // Columns: Num RefCount Protocol Flags Type St Inode [Path]
  return inodeColumn(`${proc}/net/unix`, 6).has(inode) ? 'unix' : undefined;
}

function inodeColumn(path: string, column: number): Set<string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return new Set();
  }
  return new Set(
    text
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[column] ?? ''),
  );
}
