/** Users and groups of this host by name, from /etc/passwd and /etc/group (systemd's own users included). */
import { readFile } from 'node:fs/promises';

async function idOf(file: string, name: string): Promise<number | undefined> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  const id = Number(lines.find((line) => line.startsWith(`${name}:`))?.split(':')[2]);
  return Number.isInteger(id) ? id : undefined;
}

export const userId = (name: string) => idOf('/etc/passwd', name);
export const groupId = (name: string) => idOf('/etc/group', name);
