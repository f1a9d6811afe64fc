import { PrivateSystemd } from '../test/harness/private-systemd.js';
import { startRunnerService, TEST_MACHINES } from '../test/harness/runner-service.js';
import { START_BENCH_MACHINES, benchStarts } from './starts.js';
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const systemd = PrivateSystemd.fromEnvironment();
const runner = await startRunnerService({ machines: { ...TEST_MACHINES, ...START_BENCH_MACHINES }, log: { level: 'warn' }, limits: { maxActiveTasks: 100000 } });
try {
  const r = await benchStarts(runner, systemd, say, Number(process.env['N'] ?? 30));
  console.log(JSON.stringify(r));
} finally { await runner.stop(); }
