/**
 * What one entry of the runner's own log costs under systemd (a diagnostic, not in `npm run bench`):
 * 2000 entries like a task's change ("task running"), one every 2 ms as a start's or a stop's come,
 * through the logger the runner and the starter use (src/log.ts: the native journal). Run inside the
 * private system, as a unit whose stdout is the journal (`npm run systemd` prints PID):
 *
 *   nsenter -t PID -m -p -- systemd-run --wait --quiet -p StandardOutput=journal \
 *     -p WorkingDirectory=/run/tessia-app /usr/bin/node \
 *     --import /run/tessia-app/node_modules/tsx/dist/esm/index.mjs bench/log-entry.ts info service
 *   nsenter -t PID -m -p -- cat /run/log-entry-info-service.json
 *
 * Arguments: the level (`warn`: nothing written, the loop's own cost) and `service` (the journal's
 * socket kept open between entries, as the runner's and the starter's) or `program` (opened and
 * closed around each entry, as before the ninth session of round two). It writes the p50 and p90 of
 * the call itself and the CPU a loop turn used (the 2 ms wait's own cost included: compare with warn).
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../src/log.js';
import { percentile, round } from './stats.js';

const level = process.argv[2] ?? 'info';
const service = process.argv[3] === 'service';
const { log, output } = createLogger(level, { service });
const entries = 2000;
const entry = () => log.info({ taskId: 'abcd1234', state: 'running', exitCode: null }, 'task running');
for (let i = 0; i < 200; i++) {
  entry();
  await sleep(1);
}
const callUs: number[] = [];
const cpuBefore = process.cpuUsage();
for (let i = 0; i < entries; i++) {
  const began = process.hrtime.bigint();
  entry();
  callUs.push(Number(process.hrtime.bigint() - began) / 1000);
  await sleep(2);
}
const cpu = process.cpuUsage(cpuBefore);
const result = {
  level,
  socket: service ? 'kept open' : 'opened and closed around each entry',
  output,
  callP50Us: round(percentile(callUs, 50)),
  callP90Us: round(percentile(callUs, 90)),
  cpuUsPerTurn: round((cpu.user + cpu.system) / entries),
};
writeFileSync(`/run/log-entry-${level}-${service ? 'service' : 'program'}.json`, `${JSON.stringify(result)}\n`);
process.exit(0);
