/**
 * What polkit costs a stop (issue 17, point 5): StopUnit until its job is done, of units named as
 * tasks' units are, by root — whom systemd never asks polkit about: the bare stops, the privileged
 * starter's — and by the package's user with the package's rule (units/60-tessia-task-runner.rules):
 * a runner's own stop. In alternating blocks, each by a process of that user inside the private
 * system (bench/stop-units.ts); the units are `sleep 600` with RemainAfterExit=yes, started by root.
 */
import { randomBytes } from 'node:crypto';
import { APP_DIR_INSIDE, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import { packageUser } from './package-environment.js';
import { percentile, round } from './stats.js';

const BLOCK = 20;

export interface PolkitResult {
  samples: number;
  user: string;
  root: { p50Ms: number; p90Ms: number };
  asUser: { p50Ms: number; p90Ms: number };
  p50Ratio: number;
}

export async function benchPolkit(
  systemd: PrivateSystemd,
  log: (line: string) => void,
  options: { samples: number; user: string },
): Promise<PolkitResult> {
  await packageUser(systemd, options.user);
  const units: string[] = [];
  for (let i = 0; i < options.samples; i++) {
    const unit = `tessia-task-${randomBytes(4).toString('hex')}.service`;
    const started = await systemd.run(['systemd-run', '--quiet', `--unit=${unit}`, '--property=RemainAfterExit=yes', '/bin/sleep', '600']);
    if (started.code !== 0) throw new Error(`could not start ${unit}: ${started.stderr}`);
    units.push(unit);
  }
  const times: Record<'root' | 'asUser', number[]> = { root: [], asUser: [] };
  for (let from = 0; from < units.length; from += BLOCK) {
    const side = (from / BLOCK) % 2 === 0 ? 'root' : 'asUser';
    const who = side === 'root' ? 'root' : options.user;
    const ran = await systemd.runAs(
      who,
      [
        '/usr/bin/node',
        '--import',
        `${APP_DIR_INSIDE}/node_modules/tsx/dist/esm/index.mjs`,
        `${APP_DIR_INSIDE}/bench/stop-units.ts`,
        ...units.slice(from, from + BLOCK),
      ],
      { timeoutMs: 120_000 },
    );
    if (ran.code !== 0) throw new Error(`stops as ${who} failed: ${ran.stderr}`);
    times[side].push(...(JSON.parse(ran.stdout.trim().split('\n').at(-1) ?? '{}') as { ms: number[] }).ms);
  }
  const figures = (ms: number[]) => ({ p50Ms: round(percentile(ms, 50), 2), p90Ms: round(percentile(ms, 90), 2) });
  const result: PolkitResult = {
    samples: options.samples,
    user: options.user,
    root: figures(times.root),
    asUser: figures(times.asUser),
    p50Ratio: round(percentile(times.asUser, 50) / percentile(times.root, 50), 3),
  };
  log(
    `polkit: StopUnit until done, ${times.root.length} as root p50 ${result.root.p50Ms} p90 ${result.root.p90Ms} ms; ${times.asUser.length} as ${options.user} (polkit's rule) p50 ${result.asUser.p50Ms} p90 ${result.asUser.p90Ms} ms (${result.p50Ratio}×)`,
  );
  return result;
}
