/**
 * Where the runner's and the starter's CPU goes during sustained starts, counted by the kernel
 * (TESSIA_BENCH=perf; needs `perf`): `perf record` samples each process only while it runs on a
 * core, so a sample is CPU time — unlike `--cpu-prof`, whose samples of the main thread count the
 * time it waited for a core after a socket write (on 2 vCPUs, much of it: docs/benchmarks.md). Node
 * runs with `--perf-basic-prof` (a map of its compiled functions' names, in the private system's
 * /tmp, copied out for `perf report`). Self time by symbol, and by what it is (V8's JavaScript,
 * the garbage collector, the kernel, libuv, SQLite).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { constants, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { REPO_DIR, type PrivateSystemd } from '../src/embedded/private-systemd.js';
import { ALL_UNITS_CHANGES_RULE, JOB_REMOVED_RULE } from '../src/systemd/match-rules.js';
import { client, type Api } from '../src/embedded/api-client.js';
import { startRunnerService } from '../src/embedded/runner-service.js';
import { mainPid } from './processes.js';
import { round } from './stats.js';

const run = promisify(execFile);
const CLIENTS = 16;
const RECORD_SECONDS = 8;

export interface PerfProfileResult {
  starts: number;
  /** CPU ms a start, by process, as perf counted it (samples × period). */
  cpuMsPerStart: Record<string, number>;
  /** Times each main thread went to sleep and was woken (voluntary context switches), a start. */
  wakeUpsPerStart: { runner: number; starter: number };
  /** Per main thread: its waits that slept (a timeout other than 0) a start, by the descriptor read first after each. */
  wokenBy: Record<string, Record<string, number>>;
  /** systemd's signals about units and jobs a start (all of them, as a subscriber of every unit's changes gets them): by member, the unit's kind and the interface. */
  signals: Record<string, number>;
  /** Per process: ms a start by kind of code, and the symbols with the most self time. */
  byProcess: Record<string, { byKind: Record<string, number>; top: { symbol: string; ms: number }[] }>;
  /** System calls a start, by thread kind and name. */
  syscallsPerStart: Record<string, Record<string, number>>;
}

/** The tools this benchmark runs, checked before it starts anything (Debian: linux-perf, iproute2, dbus-bin, strace). */
export function requireTools(): void {
  const missing = ['perf', 'ss', 'dbus-monitor', ...(process.env['TESSIA_BENCH_PERF_STRACE'] === '1' ? ['strace'] : [])].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0)
    throw new Error(`TESSIA_BENCH=perf needs ${missing.join(', ')} (apt-get install linux-perf iproute2 dbus-bin strace)`);
}

/** A thread's voluntary context switches: each a sleep in epoll_wait (or a lock) and a wake-up. */
function wakeUps(tid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${tid}/task/${tid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** What each descriptor of a process is: a TCP connection, a Unix socket (with its peer's path when it has one), a file. */
function describeDescriptors(pid: number): Map<number, string> {
  // Unix sockets: `ss -xn` rows (local path or *, inode, peer path or *, peer inode); a client's
  // socket has no path of its own: its peer's (the bus's, the starter's listening path) says what it is.
  const pathOf = new Map<string, string>();
  const peerOf = new Map<string, string>();
  for (const row of execFileSync('ss', ['-xn'], { encoding: 'utf8' }).split('\n').slice(1)) {
    const fields = row.trim().split(/\s+/);
    const [local, localInode, peer, peerInode] = fields.slice(4, 8);
    if (!localInode || !peerInode) continue;
    if (local && local !== '*') pathOf.set(localInode, local);
    if (peer && peer !== '*') pathOf.set(peerInode, peer);
    peerOf.set(localInode, peerInode);
  }
  const result = new Map<number, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const peer = inode === undefined ? undefined : peerOf.get(inode);
    const path = inode === undefined ? undefined : (pathOf.get(inode) ?? (peer === undefined ? undefined : pathOf.get(peer)));
    result.set(
      Number(fd),
      inode === undefined ? target.replace(/\/[^/]*$/, '/…') : `socket ${path ?? (peer === undefined ? '(tcp)' : '(unix)')}`,
    );
  }
  return result;
}

/**
 * From perf script's lines (tid, event, arguments): each wait that slept (timeout not 0) and
 * returned events, counted by the descriptor of the first read after it — what woke the thread.
 */
function wakeSources(
  script: string,
  host: { runner: number; starter: number },
  descriptors: { runner: Map<number, string>; starter: Map<number, string> },
  starts: number,
): Record<string, Record<string, number>> {
  const result: Record<string, Record<string, number>> = { runner: {}, starter: {} };
  const state = new Map<number, { sleeping: boolean; woke: boolean }>();
  for (const line of script.split('\n')) {
    const found = /^\s*(\d+)\s+syscalls:(sys_enter|sys_exit)_(\w+):\s*(.*)$/.exec(line);
    if (!found) continue;
    const tid = Number(found[1]);
    const name = tid === host.runner ? 'runner' : tid === host.starter ? 'starter' : null;
    if (!name) continue;
    const [, , phase, call, args] = found;
    const thread = state.get(tid) ?? { sleeping: false, woke: false };
    state.set(tid, thread);
    const field = (key: string) => Number.parseInt(new RegExp(`${key}: (0x[0-9a-f]+|-?\\d+)`).exec(args ?? '')?.[1] ?? 'NaN');
    if (call === 'epoll_pwait' && phase === 'sys_enter') {
      thread.sleeping = field('timeout') !== 0;
      thread.woke = false;
    } else if (call === 'epoll_pwait' && phase === 'sys_exit') {
      thread.woke = thread.sleeping && field('ret') !== 0;
      if (thread.sleeping && !thread.woke) {
        const sources = result[name] ?? {};
        sources['(a timer)'] = (sources['(a timer)'] ?? 0) + 1;
      }
    } else if (phase === 'sys_enter' && thread.woke) {
      thread.woke = false;
      const fd = field('fd');
      const sources = result[name] ?? {};
      const what = descriptors[name].get(fd) ?? `fd ${fd}`;
      sources[what] = (sources[what] ?? 0) + 1;
    }
  }
  for (const sources of Object.values(result)) {
    for (const [what, count] of Object.entries(sources)) sources[what] = round(count / Math.max(1, starts), 2);
  }
  return result;
}

/** dbus-monitor's signal lines ("signal time=… path=/org/…/unit/tessia_2dtask_2d…; member=…") and the interface line after each, counted. */
function signalKinds(text: string, starts: number): Record<string, number> {
  const counts: Record<string, number> = {};
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const found = /^signal .* path=([^;]+); interface=[^;]+; member=(\w+)/.exec(line);
    if (!found) return;
    const [, path, member] = found;
    const unit = decodeURIComponent((path ?? '').replace(/^.*\/unit\//, '').replace(/_([0-9a-f]{2})/g, '%$1'));
    const kind = path?.includes('/unit/')
      ? unit.replace(/^tessia-task-[0-9a-f]+/, 'tessia-task-*').replace(/^tessia-test-runner-[0-9a-f]+/, 'the runner')
      : '(manager)';
    const iface =
      member === 'PropertiesChanged'
        ? (/string "([^"]+)"/.exec(lines[index + 1] ?? '')?.[1] ?? '?').replace('org.freedesktop.systemd1.', '')
        : '';
    const key = `${member} ${kind}${iface ? ` ${iface}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  });
  return Object.fromEntries(
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([key, count]) => [key, round(count / Math.max(1, starts), 2)]),
  );
}

/** Which of the two processes a thread belongs to (its Tgid). */
function processOf(tid: number, host: { runner: number; starter: number }): 'runner' | 'starter' | null {
  try {
    const tgid = Number(/^Tgid:\s+(\d+)/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'))?.[1]);
    return tgid === host.runner ? 'runner' : tgid === host.starter ? 'starter' : null;
  } catch {
    return null;
  }
}

/**
 * perf trace -s: a block per thread (" node (TID), N events, …") and a row per system call
 * ("   write   12   0   0.123 …"); counted a start, the main threads apart from the others.
 */
function syscallSummary(text: string, host: { runner: number; starter: number }, starts: number): Record<string, Record<string, number>> {
  const result: Record<string, Record<string, number>> = {};
  let current: string | null = null;
  for (const line of text.split('\n')) {
    const thread = /^\s*\S+ \((\d+)\), \d+ events/.exec(line);
    if (thread) {
      const tid = Number(thread[1]);
      current = tid === host.runner ? 'runner' : tid === host.starter ? 'starter' : `${processOf(tid, host) ?? 'other'} (other threads)`;
      continue;
    }
    const row = /^\s+([a-z_0-9]+)\s+(\d+)\s+\d+\s+[\d.]+/.exec(line);
    if (row && current) {
      const calls = (result[current] ??= {});
      calls[row[1] ?? '?'] = (calls[row[1] ?? '?'] ?? 0) + Number(row[2]) / Math.max(1, starts);
    }
  }
  for (const calls of Object.values(result)) {
    for (const [name, count] of Object.entries(calls)) calls[name] = round(count, 2);
    calls['(all)'] = round(
      Object.values(calls).reduce((sum, count) => sum + count, 0),
      1,
    );
  }
  return result;
}

/** The host's PID of a process of the private system (its /proc/PID/status's NSpid: the host's first, the innermost last). */
function hostPid(systemd: PrivateSystemd, insidePid: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number);
      if (nspid && nspid.length > 1 && nspid.at(-1) === insidePid && isInside(systemd, Number(entry))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no host PID for ${insidePid}`);
}

function isInside(systemd: PrivateSystemd, pid: number): boolean {
  try {
    return existsSync(`/proc/${pid}/root/run/tessia-app`) && systemd.pid !== pid;
  } catch {
    return false;
  }
}

function kindOf(dso: string, symbol: string): string {
  if (dso.includes('kernel')) return 'kernel';
  if (dso.startsWith('[JIT]') || symbol.startsWith('JS:')) return 'JavaScript (compiled)';
  if (symbol.startsWith('Builtin:') || symbol.startsWith('BytecodeHandler:') || symbol.startsWith('Bytecodes'))
    return 'V8 builtins and interpreter';
  if (/better_sqlite3|sqlite/i.test(dso)) return 'SQLite';
  if (/libc|libm|libpthread|ld-linux/.test(dso)) return 'libc';
  if (dso.endsWith('node')) {
    if (/Heap|Scavenge|Mark|Sweep|GC|Evacuat|Compact|Marking/.test(symbol)) return 'garbage collector';
    if (/^uv_|uv__/.test(symbol)) return 'libuv';
    return 'node and V8 (C++)';
  }
  return dso || '(unknown)';
}

export async function perfProfileStarts(
  config: Record<string, unknown>,
  systemd: PrivateSystemd,
  machine: string,
  log: (line: string) => void,
  options: { nodeFlags: string[]; env: Record<string, string> },
): Promise<PerfProfileResult> {
  requireTools();
  const runner = await startRunnerService(config, {
    nodeFlags: [...options.nodeFlags, '--perf-basic-prof'],
    env: options.env,
    starter: true,
    starterNodeFlags: ['--perf-basic-prof'],
  });
  const out = join(REPO_DIR, '.state', 'perf');
  mkdirSync(out, { recursive: true });
  try {
    const api = client(runner.baseUrl);
    const inside = { runner: await mainPid(systemd, runner.unit), starter: await mainPid(systemd, runner.starter?.unit ?? '') };
    const host = { runner: hostPid(systemd, inside.runner), starter: hostPid(systemd, inside.starter) };
    const startFor = async (ms: number) => {
      const until = performance.now() + ms;
      let done = 0;
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (performance.now() < until) if (await startOne(api, machine)) done += 1;
        }),
      );
      return done;
    };
    // Warm-up: V8 compiles the hot paths as they get hot, on threads of its own; a service running
    // for days has done so long before (TESSIA_BENCH_PERF_WARMUP: starts first, default 1500).
    const warmUp = Number(process.env['TESSIA_BENCH_PERF_WARMUP'] ?? 1500);
    let warmed = 0;
    while (warmed < warmUp) warmed += await startFor(5000);
    await sleep(2000);
    log(`perf: ${warmed} starts of warm-up`);
    const data = join(out, 'perf.data');
    const recorder = spawn('perf', ['record', '-F', '999', '-e', 'cpu-clock', '-g', '-o', data, '-p', `${host.runner},${host.starter}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const recorderExit = once(recorder, 'exit');
    await sleep(500);
    const switchesBefore = { runner: wakeUps(host.runner), starter: wakeUps(host.starter) };
    const began = performance.now();
    const starts = await startFor(RECORD_SECONDS * 1000);
    // The tasks end (sleep 0.3) and are collected: part of what a start costs.
    await sleep(1500);
    const wakeUpsPerStart = {
      runner: round((wakeUps(host.runner) - switchesBefore.runner) / Math.max(1, starts), 1),
      starter: round((wakeUps(host.starter) - switchesBefore.starter) / Math.max(1, starts), 1),
    };
    recorder.kill('SIGINT');
    await recorderExit;
    log(
      `perf: ${starts} starts in ${round((performance.now() - began) / 1000, 1)} s recorded; main threads' wake-ups a start ${JSON.stringify(wakeUpsPerStart)}`,
    );
    // Node's maps of compiled code, where perf looks for them: /tmp/perf-<host PID>.map.
    for (const name of ['runner', 'starter'] as const) {
      const map = `${systemd.root}/tmp/perf-${inside[name]}.map`;
      // Where perf looks; made afresh, never through what another user may have put there.
      const target = `/tmp/perf-${host[name]}.map`;
      rmSync(target, { force: true });
      if (existsSync(map)) copyFileSync(map, target, constants.COPYFILE_EXCL);
    }
    const { stdout } = await run(
      'perf',
      [
        'report',
        '-i',
        data,
        '--no-children',
        '--sort',
        'pid,dso,sym',
        '--stdio',
        '-g',
        'none',
        '--percent-limit',
        '0',
        '-F',
        'sample,pid,dso,sym',
        '--field-separator=\t',
      ],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    writeFileSync(join(out, 'report.txt'), stdout);
    const period = 1000 / 999;
    const byProcess: PerfProfileResult['byProcess'] = {};
    const cpuMsPerStart: Record<string, number> = {};
    for (const line of stdout.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const [samples, thread, dso, symbol] = line.split('\t').map((field) => field.trim());
      const tid = Number(/^(\d+):/.exec(thread ?? '')?.[1]);
      if (!samples || !Number.isFinite(tid)) continue;
      const owner = tid === host.runner ? 'runner' : tid === host.starter ? 'starter' : null;
      // Threads other than the main one: V8's compiler and garbage collector, libuv's pool.
      const name = owner ?? `${processOf(tid, host) ?? 'other'} (other threads)`;
      const ms = (Number(samples) * period) / Math.max(1, starts);
      const entry = (byProcess[name] ??= { byKind: {}, top: [] });
      const kind = kindOf(dso ?? '', symbol ?? '');
      entry.byKind[kind] = (entry.byKind[kind] ?? 0) + ms;
      entry.top.push({ symbol: `${(symbol ?? '').replace(/^\[[.k]\] /, '')} [${dso ?? ''}]`, ms });
      cpuMsPerStart[name] = (cpuMsPerStart[name] ?? 0) + ms;
    }
    for (const entry of Object.values(byProcess)) {
      const merged = new Map<string, number>();
      for (const row of entry.top) merged.set(row.symbol, (merged.get(row.symbol) ?? 0) + row.ms);
      entry.top = [...merged]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 60)
        .map(([symbol, ms]) => ({ symbol, ms: round(ms, 3) }));
      entry.byKind = Object.fromEntries(
        Object.entries(entry.byKind)
          .sort((a, b) => b[1] - a[1])
          .map(([kind, ms]) => [kind, round(ms, 3)]),
      );
    }
    for (const [name, entry] of Object.entries(byProcess)) {
      log(`perf ${name}: ${round(cpuMsPerStart[name] ?? 0, 2)} ms of CPU a start; by kind ${JSON.stringify(entry.byKind)}`);
      log(
        `perf ${name} top: ${entry.top
          .slice(0, 25)
          .map((row) => `${row.symbol} ${row.ms}`)
          .join('; ')}`,
      );
    }
    // System calls a start, by name (perf trace's summary, a window of its own: it slows what it traces).
    const traced = spawn('perf', ['trace', '-s', '-p', `${host.runner},${host.starter}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let summary = '';
    traced.stderr.on('data', (chunk: Buffer) => (summary += chunk.toString()));
    const tracedExit = once(traced, 'exit');
    await sleep(500);
    const tracedStarts = await startFor(4000);
    await sleep(1500);
    traced.kill('SIGINT');
    await tracedExit;
    const syscallsPerStart = syscallSummary(summary, host, tracedStarts);
    // What wakes each main thread: every wait's end and the reads that follow it, by descriptor
    // (perf's syscall tracepoints: a few microseconds each, not strace's stop of the process).
    const wakeData = join(out, 'wakes.data');
    const wakes = spawn(
      'perf',
      [
        'record',
        '-o',
        wakeData,
        '-e',
        'syscalls:sys_enter_epoll_pwait',
        '-e',
        'syscalls:sys_exit_epoll_pwait',
        '-e',
        'syscalls:sys_enter_read',
        '-e',
        'syscalls:sys_enter_readv',
        '-e',
        'syscalls:sys_enter_recvmsg',
        '-t',
        `${host.runner},${host.starter}`,
      ],
      { stdio: 'ignore' },
    );
    const wakesExit = once(wakes, 'exit');
    await sleep(500);
    const wakeStarts = await startFor(4000);
    await sleep(1500);
    const descriptors = { runner: describeDescriptors(host.runner), starter: describeDescriptors(host.starter) };
    wakes.kill('SIGINT');
    await wakesExit;
    const { stdout: script } = await run('perf', ['script', '-i', wakeData, '-F', 'tid,event,trace'], { maxBuffer: 512 * 1024 * 1024 });
    const wokenBy = wakeSources(script, host, descriptors, wakeStarts);
    for (const [name, sources] of Object.entries(wokenBy))
      log(`wake-ups of the ${name} a start, by what was read first: ${JSON.stringify(sources)}`);
    // What systemd signals a start: every unit's changes and every job's end, as a subscriber of all
    // of them is sent (as the runner was before each followed unit had a rule of its own), a start.
    const monitored = systemd.run(['timeout', '5', 'dbus-monitor', '--system', ALL_UNITS_CHANGES_RULE, JOB_REMOVED_RULE], {
      timeoutMs: 10_000,
    });
    await sleep(500);
    const monitoredStarts = await startFor(4000);
    const signals = signalKinds((await monitored).stdout, monitoredStarts);
    log(`systemd's signals about units and jobs a start (${monitoredStarts} starts): ${JSON.stringify(signals)}`);
    // Every read, write and wait of the runner's main thread, with what each descriptor is (strace -yy),
    // for a look at what wakes it: .state/perf/strace.txt (TESSIA_BENCH_PERF_STRACE=1).
    if (process.env['TESSIA_BENCH_PERF_STRACE'] === '1') {
      const straced = spawn(
        'strace',
        [
          '-yy',
          '-tt',
          '-e',
          'trace=read,readv,recvmsg,recvfrom,write,writev,sendmsg,epoll_pwait,epoll_wait',
          '-o',
          join(out, 'strace.txt'),
          '-p',
          String(host.runner),
        ],
        { stdio: 'ignore' },
      );
      const stracedExit = once(straced, 'exit');
      await sleep(500);
      const stracedStarts = await startFor(3000);
      await sleep(1500);
      straced.kill('SIGINT');
      await stracedExit;
      log(`strace: ${stracedStarts} starts traced, in .state/perf/strace.txt`);
    }
    for (const [name, calls] of Object.entries(syscallsPerStart)) {
      log(`perf trace ${name}: system calls a start ${JSON.stringify(calls)}`);
    }
    return {
      starts,
      cpuMsPerStart: Object.fromEntries(Object.entries(cpuMsPerStart).map(([k, v]) => [k, round(v, 2)])),
      wakeUpsPerStart,
      wokenBy,
      signals,
      byProcess,
      syscallsPerStart,
    };
  } finally {
    await runner.stop();
  }
}

async function startOne(api: Api, machine: string): Promise<boolean> {
  return (await api.post('/v1/tasks', { machine, parameters: null })).status === 201;
}
