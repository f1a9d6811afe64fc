/**
 * The environment the package's unit gives the runner (units/tessia-task-runner.service,
 * `Environment=` lines): the benchmarks run the runner with it, read from the unit so that the two
 * cannot drift. NODE_OPTIONS becomes node flags (the private system's runner is started with
 * systemd-run, flags first); every other variable stays a variable.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import { ensureSystemUser } from '../src/embedded/runner-service.js';

export interface PackageEnvironment {
  nodeFlags: string[];
  env: Record<string, string>;
}

export function packageEnvironment(
  unitText = readFileSync(join(REPO_DIR, 'units/tessia-task-runner.service'), 'utf8'),
): PackageEnvironment {
  const env: Record<string, string> = {};
  for (const line of unitText.split('\n')) {
    const assignment = /^Environment=(\w+)=(.*)$/.exec(line.trim());
    if (assignment) env[assignment[1] as string] = assignment[2] as string;
  }
  const { NODE_OPTIONS: options = '', ...rest } = env;
  return { nodeFlags: options.split(' ').filter(Boolean), env: rest };
}

const POLKIT_RULE = '60-tessia-task-runner.rules';
/** The package's user: the one the polkit rule allows. */
export const PACKAGE_USER = 'tessia-task-runner';

/**
 * The package's user and its polkit rule (units/60-tessia-task-runner.rules) in the private system:
 * a runner run as that user is asked about by polkit for each stop, kill and reset of its own, as
 * the package's is. polkitd must be installed (D-Bus activates it at the first question).
 */
export async function packageUser(systemd: PrivateSystemd, user: string): Promise<void> {
  if (!existsSync('/usr/lib/polkit-1/polkitd'))
    throw new Error('running the runner as the package does needs polkit: apt-get install polkitd');
  await ensureSystemUser(systemd, user);
  const rules = `${systemd.root}/etc/polkit-1/rules.d`;
  mkdirSync(rules, { recursive: true });
  writeFileSync(join(rules, POLKIT_RULE), readFileSync(join(REPO_DIR, 'units', POLKIT_RULE)));
}
