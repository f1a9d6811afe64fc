/** A Unix datagram socket for unit tests, standing in for journald's or systemd's (test/fixtures/datagram-receiver.py). */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseDatagram } from './journal-datagram.js';

const RECEIVER = fileURLToPath(new URL('../fixtures/datagram-receiver.py', import.meta.url));

/** A Unix datagram socket that reads only when told to (test/fixtures/datagram-receiver.py). */
export class Receiver {
  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    private readonly lines: AsyncIterator<string>,
    private readonly reader: Interface,
  ) {}

  static async bind(path: string): Promise<Receiver> {
    const child = spawn('python3', [RECEIVER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
    const reader = createInterface({ input: child.stdout });
    const receiver = new Receiver(child, reader[Symbol.asyncIterator](), reader);
    assert.equal(await receiver.nextLine(), 'ready');
    return receiver;
  }

  /** The next `count` datagrams as journal fields, fewer when none comes within `seconds`. */
  async read(count: number, seconds = 5): Promise<Record<string, string>[]> {
    return (await this.readRaw(count, seconds)).map(parseDatagram);
  }

  /** The next `count` datagrams as they came, fewer when none comes within `seconds`. */
  async readRaw(count: number, seconds = 5): Promise<Buffer[]> {
    this.child.stdin.write(`read ${count} ${seconds}\n`);
    const datagrams: Buffer[] = [];
    for (;;) {
      const line = await this.nextLine();
      if (line === 'end') return datagrams;
      if (line !== 'timeout') datagrams.push(Buffer.from(line, 'base64'));
    }
  }

  /** Its socket closes with it, as journald's does when it stops. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill();
    this.reader.close();
    await exited;
  }

  private async nextLine(): Promise<string> {
    const next = await this.lines.next();
    if (next.done) throw new Error('the receiver ended');
    return next.value;
  }
}
