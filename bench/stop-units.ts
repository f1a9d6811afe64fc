/**
 * Run inside the private system by bench/polkit.ts, as the user whose stops it times: StopUnit of
 * each unit named on the command line until its job is done, one at a time; prints the times (ms)
 * as one JSON line.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { SystemdClient } from '../src/systemd/client.js';

const bus = await SystemdClient.connect(() => false);
const ms: number[] = [];
for (const unit of process.argv.slice(2)) {
  const began = performance.now();
  const result = await bus.stopUnitAndWait(unit);
  if (result !== 'done') throw new Error(`${unit}: stop job ${result}`);
  ms.push(performance.now() - began);
  // As the stop benchmarks space theirs: systemd has finished with the last unit.
  await sleep(20);
}
bus.close();
console.log(JSON.stringify({ uid: process.getuid?.(), ms }));
