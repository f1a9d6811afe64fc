/**
 * What one message costs the process that reads it on this machine, whatever it then does with it:
 * a writer sends small messages over a Unix socket one at a time, far enough apart that each wakes
 * the reader, and the reader only counts them. Two readers: a Node.js event loop (the runner's
 * runtime) and a blocking Python loop (the leanest reader at hand: the machine's own cost of a
 * wake-up). The runner reads every signal systemd sends about each of its units this way, so the
 * signals of a unit's life times this cost is a floor under the runner's CPU a task.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { round } from './stats.js';

const MESSAGES = 1000;
/** About the mean size of systemd's PropertiesChanged of a task unit (dbus-monitor: ~24 of them, ~20 KB, a plain unit's life). */
const MESSAGE_BYTES = 800;
const GAP_MS = 2;
const ROUNDS = 3;

const NODE_READER = `
const [path, count] = process.argv.slice(1);
let before;
let reads = 0;
require('node:net').createServer((socket) => {
  socket.on('data', () => { if (before === undefined) before = process.cpuUsage(); else reads += 1; });
  socket.on('end', () => {
    const used = process.cpuUsage(before);
    // The reads after the first, and the end: as many wake-ups as the messages.
    console.log(JSON.stringify({ userUs: used.user / Number(count), systemUs: used.system / Number(count), reads: reads + 1 }));
    process.exit(0);
  });
}).listen(path, () => console.log('ready'));
`;

const PYTHON_READER = `
import json, resource, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(1)
print('ready', flush=True)
conn, _ = server.accept()
conn.recv(65536)
before = resource.getrusage(resource.RUSAGE_SELF)
reads = 1
while conn.recv(65536):
    reads += 1
used = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'userUs': (used.ru_utime - before.ru_utime) / count * 1e6, 'systemUs': (used.ru_stime - before.ru_stime) / count * 1e6, 'reads': reads}))
`;

const WRITER = `
const [path, count, bytes, gapMs] = process.argv.slice(1).map((value, i) => (i === 0 ? value : Number(value)));
const socket = require('node:net').connect(path, async () => {
  const message = Buffer.alloc(bytes, 1);
  for (let i = 0; i < count; i++) {
    socket.write(message);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  socket.end();
});
`;

export interface ReaderCost {
  /** CPU microseconds a message, user and system, of the round whose total is the median. */
  userUs: number;
  systemUs: number;
  totalUs: number;
  /** Reads that round made, the end's included: as many as the messages when each woke the reader. */
  reads: number;
}

interface RoundCost {
  userUs: number;
  systemUs: number;
  reads: number;
}

export interface WakeupResult {
  messages: number;
  messageBytes: number;
  gapMs: number;
  rounds: number;
  node: ReaderCost;
  /** null: no python3 here. */
  python: ReaderCost | null;
}

function output(child: ReturnType<typeof spawn>): Promise<{ ready: Promise<void>; result: Promise<string> }> {
  let text = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    if (text.startsWith('ready\n')) onReady();
  });
  const result = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text.slice('ready\n'.length)) : reject(new Error(`reader exited ${String(code)}`))));
  });
  // A reader that fails before it is ready (no python3) fails the round, not the process.
  return Promise.race([ready, result]).then(() => ({ ready, result }));
}

async function oneRound(reader: 'node' | 'python', dir: string, index: number): Promise<RoundCost> {
  const path = join(dir, `${reader}-${index}.sock`);
  const child =
    reader === 'node'
      ? spawn(process.execPath, ['-e', NODE_READER, path, String(MESSAGES)], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn('python3', ['-c', PYTHON_READER, path, String(MESSAGES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { ready, result } = await output(child);
  await ready;
  const writer = spawn(process.execPath, ['-e', WRITER, path, String(MESSAGES), String(MESSAGE_BYTES), String(GAP_MS)], {
    stdio: 'inherit',
  });
  await new Promise((resolve) => writer.on('exit', resolve));
  return JSON.parse(await result) as RoundCost;
}

/** The round whose total is the median, its user and system time as they were. */
function medianRound(rounds: RoundCost[]): ReaderCost {
  const sorted = [...rounds].sort((a, b) => a.userUs + a.systemUs - (b.userUs + b.systemUs));
  const middle = sorted[Math.floor(sorted.length / 2)];
  if (!middle) throw new Error('no round');
  return {
    userUs: round(middle.userUs),
    systemUs: round(middle.systemUs),
    totalUs: round(middle.userUs + middle.systemUs),
    reads: middle.reads,
  };
}

export async function benchWakeups(log: (line: string) => void): Promise<WakeupResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tessia-wakeups-'));
  try {
    const rounds: Record<'node' | 'python', RoundCost[]> = { node: [], python: [] };
    let python = true;
    // Interleaved, so a drift of the machine weighs on both readers alike.
    for (let i = 0; i < ROUNDS; i++) {
      rounds.node.push(await oneRound('node', dir, i));
      if (python) {
        try {
          rounds.python.push(await oneRound('python', dir, i));
        } catch (error) {
          log(`wake-ups: no Python reader (${String(error)})`);
          python = false;
        }
      }
    }
    const result: WakeupResult = {
      messages: MESSAGES,
      messageBytes: MESSAGE_BYTES,
      gapMs: GAP_MS,
      rounds: ROUNDS,
      node: medianRound(rounds.node),
      python: python ? medianRound(rounds.python) : null,
    };
    log(
      `wake-ups: ${MESSAGES} messages of ${MESSAGE_BYTES} bytes, ${GAP_MS} ms apart, read and dropped: a Node.js reader ${result.node.totalUs} µs of CPU a message (user ${result.node.userUs}, system ${result.node.systemUs}; ${result.node.reads} reads)${result.python ? `; a blocking Python reader ${result.python.totalUs} µs (user ${result.python.userUs}, system ${result.python.systemUs}; ${result.python.reads} reads)` : ''}`,
    );
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
