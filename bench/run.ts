/**
 * `npm run bench`: boots the private systemd, starts the runner in it as a service, runs every
 * benchmark with its baseline in the same run, prints the figures and writes bench/results.json.
 * Goals are ratios (absolute times on shared machines are noisy); docs/benchmarks.md has the table.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_DIR, bootPrivateSystemd } from '../test/harness/private-systemd.js';
import { startRunnerService, TEST_MACHINES } from '../test/harness/runner-service.js';
import { LOG_BENCH_MACHINES, benchLogs } from './logs.js';
import { START_BENCH_MACHINES, benchStarts } from './starts.js';

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const booted = await bootPrivateSystemd({ log: say });
process.env['TESSIA_TEST_SYSTEMD_PID'] = String(booted.systemd.pid);
process.once('SIGINT', () => void booted.shutdown().then(() => process.exit(130)));
try {
  const runner = await startRunnerService({ machines: { ...TEST_MACHINES, ...LOG_BENCH_MACHINES, ...START_BENCH_MACHINES }, log: { level: 'warn' }, limits: { maxActiveTasks: 100000 } });
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  say(`machine: ${JSON.stringify(machine)}`);
  const only = process.env['TESSIA_BENCH'];
  const starts = !only || only === 'starts' ? await benchStarts(runner, booted.systemd, say, Number(process.env['TESSIA_BENCH_SAMPLES'] ?? 500)) : undefined;
  const logs = !only || only === 'logs' ? await benchLogs(runner, booted.systemd, say) : undefined;
  const results = { date: new Date().toISOString(), machine, starts, logs };
  writeFileSync(join(REPO_DIR, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
  await runner.stop();
} finally {
  await booted.shutdown();
}
