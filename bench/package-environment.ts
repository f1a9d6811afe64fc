/**
 * The environment the package's unit gives the runner (units/tessia-task-runner.service,
 * `Environment=` lines): the benchmarks run the runner with it, read from the unit so that the two
 * cannot drift. NODE_OPTIONS becomes node flags (the private system's runner is started with
 * systemd-run, flags first); every other variable stays a variable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from '../src/embedded/private-systemd.js';

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
