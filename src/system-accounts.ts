/**
 * Users and groups of this host by name, through NSS (`getent`): /etc/passwd and /etc/group, and
 * whatever else the host resolves names from (LDAP, sssd, systemd's userdb).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The entry's fields, or undefined when there is no such name (getent exits 2). */
async function entry(database: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('getent', [database, '--', name], { timeout: 10_000 });
    return stdout.split('\n')[0]?.split(':');
  } catch (error) {
    if ((error as { code?: unknown }).code === 2) return undefined;
    throw error;
  }
}

const number = (field: string | undefined) => (field !== undefined && /^\d+$/.test(field) ? Number(field) : undefined);

/** A user's UID and primary GID. */
export async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const fields = await entry('passwd', name);
  const [uid, gid] = [number(fields?.[2]), number(fields?.[3])];
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

export async function groupId(name: string): Promise<number | undefined> {
  return number((await entry('group', name))?.[2]);
}

/** Every group a user is in (primary and supplementary), as systemd gives them to its processes. */
export async function groupIdsOf(name: string): Promise<number[] | undefined> {
  try {
    const { stdout } = await run('id', ['-G', '--', name], { timeout: 10_000 });
    return stdout.trim().split(/\s+/).map(Number);
  } catch (error) {
    if ((error as { code?: unknown }).code === 1) return undefined;
    throw error;
  }
}
