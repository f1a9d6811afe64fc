/**
 * What a reload (SIGHUP, `systemctl reload`) can change in a running runner, and what needs a
 * restart. A reload applies all of a new config or none of it: a change to a restart-only setting
 * refuses the whole reload, so that the config in force is always one whole file.
 */
import { ConfigSchema, type Config } from './schema.js';

/**
 * Applied by a reload: machines (to new tasks), tokens and the token file, the TLS certificate, key
 * and client CA (re-read even when the paths stay: rotation in place), who counts as guarded, the
 * runner's names and origins, the log level. Any other key (and any key added later) needs a restart.
 */
export const LIVE_KEYS: ReadonlySet<keyof Config> = new Set<keyof Config>([
  'machines',
  'auth',
  'tls',
  'insecure',
  'allowedHosts',
  'allowedOrigins',
  'log',
]);

/** The settings that differ between `current` and `next` and cannot change without a restart. */
export function restartOnlyChanges(current: Config, next: Config): string[] {
  const keys = Object.keys(ConfigSchema.shape) as (keyof Config)[];
  const changed: string[] = keys.filter((key) => !LIVE_KEYS.has(key) && JSON.stringify(current[key]) !== JSON.stringify(next[key]));
  // HTTP and HTTPS are different servers, and whether clients are asked for a certificate is fixed
  // when the server is made: only the files may change.
  if ((current.tls === undefined) !== (next.tls === undefined)) changed.push(`tls (${next.tls ? 'added' : 'removed'})`);
  else if ((current.tls?.clientCa === undefined) !== (next.tls?.clientCa === undefined))
    changed.push(`tls.clientCa (${next.tls?.clientCa ? 'added' : 'removed'})`);
  return changed;
}
