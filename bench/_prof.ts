import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { PrivateSystemd } from '../test/harness/private-systemd.js';
import { startRunnerService, TEST_MACHINES } from '../test/harness/runner-service.js';
import { client } from '../test/harness/http.js';
import { START_BENCH_MACHINES } from './starts.js';
import { SCALE_BENCH_MACHINES } from './scale.js';
import { cpuDuring, watchedProcesses } from './processes.js';
const systemd = PrivateSystemd.fromEnvironment();
mkdirSync(`${systemd.root}/run/prof`, { recursive: true });
const runner = await startRunnerService({ machines: { ...TEST_MACHINES, ...START_BENCH_MACHINES, ...SCALE_BENCH_MACHINES }, log: { level: 'warn' }, limits: { maxActiveTasks: 100000 } }, process.env.PROF ? { nodeFlags: ['--cpu-prof', '--cpu-prof-dir=/run/prof'] } : {});
const api = client(runner.baseUrl);
const processes = await watchedProcesses(systemd, runner.unit);
let starts = 0; const t0 = performance.now(); const until = t0 + 5000;
const machine = process.env.M ?? 'bench-true';
const { cpuSeconds } = await cpuDuring(systemd, processes, () => Promise.all(Array.from({ length: 16 }, async () => { while (performance.now() < until) { const r = await api.post('/v1/tasks', { machine, parameters: null }); if (r.status === 201) starts++; } })));
await new Promise((r) => setTimeout(r, 1500));
console.log(starts, (starts / ((performance.now() - t0 - 1500) / 1000)).toFixed(1), '/s', JSON.stringify(Object.fromEntries(Object.entries(cpuSeconds).map(([k, v]) => [k, (v * 1000 / starts).toFixed(2)]))));
await runner.stop();
if (process.env.PROF) {
  const file = readdirSync(`${systemd.root}/run/prof`).filter((f) => f.endsWith('.cpuprofile')).sort().pop()!;
  const prof = JSON.parse(readFileSync(`${systemd.root}/run/prof/${file}`, 'utf8'));
  const self = new Map<string, number>();
  const dt = new Map<number, number>();
  prof.samples.forEach((id: number, i: number) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  for (const node of prof.nodes) {
    const cf = node.callFrame; const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/dist\//, 'dist/')}:${cf.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (dt.get(node.id) ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log('total ms', (total / 1000).toFixed(0));
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((v / 1000).toFixed(0).padStart(6), k);
  // by module
  const byMod = new Map<string, number>();
  for (const node of prof.nodes) { const u = node.callFrame.url.replace(/.*node_modules\/(@[^/]+\/[^/]+|[^/]+).*/, 'nm:$1').replace(/.*\/dist\/(.*)/, 'dist/$1'); byMod.set(u, (byMod.get(u) ?? 0) + (dt.get(node.id) ?? 0)); }
  console.log('--- by module'); for (const [k, v] of [...byMod.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / 1000).toFixed(0).padStart(6), k);
}
