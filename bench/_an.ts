import { readdirSync, readFileSync } from 'node:fs';
const dir = process.argv[2]!; const names = process.argv.slice(3);
const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort().pop()!;
const prof = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
const dt = new Map<number, number>(); prof.samples.forEach((id: number, i: number) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const parent = new Map<number, any>(); const byId = new Map<number, any>();
for (const n of prof.nodes) { byId.set(n.id, n); for (const c of n.children ?? []) parent.set(c, n); }
const stacks = new Map<string, number>();
for (const n of prof.nodes) {
  if (!names.includes(n.callFrame.functionName)) continue;
  const chain: string[] = []; let p = n; for (let i = 0; i < 8 && p; i++) { chain.push(`${p.callFrame.functionName || '(anon)'}@${p.callFrame.url.split('/').slice(-1)[0]}:${p.callFrame.lineNumber}`); p = parent.get(p.id); }
  const k = chain.join(' < '); stacks.set(k, (stacks.get(k) ?? 0) + (dt.get(n.id) ?? 0));
}
for (const [k, v] of [...stacks.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log((v / 1000).toFixed(0).padStart(5), k);
