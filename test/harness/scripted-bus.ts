/**
 * A bus for unit tests of what reaches dbus-next: a Unix socket that authenticates one client as
 * dbus-daemon does (EXTERNAL), answers each of its method calls with an empty reply (Hello with a
 * unique name; AddMatch and RemoveMatch with an empty one, or none when the call asks for none) or the
 * next one a test gave (`replies`), and sends it the messages a test gives, as
 * bytes (./wire-marshal.ts). It keeps the calls it was sent (`calls`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { marshalMessage } from './wire-marshal.js';

const UNIQUE_NAME = ':1.7';

export class ScriptedBus {
  private client: Socket | null = null;
  private serial = 1;
  /** The bodies of the next replies to method calls other than Hello, in order; `then`: bytes sent in the same write. */
  readonly replies: { body?: [string, unknown[]]; littleEndian: boolean; then?: Buffer }[] = [];
  /** Every method call the client sent, as bytes, Hello first. */
  readonly calls: Buffer[] = [];
  /** AddMatch calls whose rule holds this text are refused, as a bus at its limit of rules refuses them. */
  refuseMatches: string | null = null;
  /** AddMatch calls whose rule holds this text are answered only at releaseHeld(), in order. */
  holdMatches: string | null = null;
  private readonly held: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async listen(path: string): Promise<ScriptedBus> {
    const server = createServer();
    const bus = new ScriptedBus(server, `unix:path=${path}`);
    server.on('connection', (socket) => bus.serve(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return bus;
  }

  /** Bytes to the client, as they are. */
  send(bytes: Buffer): void {
    if (!this.client) throw new Error('no client connected');
    this.client.write(bytes);
  }

  /** Answers the AddMatch calls held so far (holdMatches), in the order they came. */
  releaseHeld(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  /** Drops the connection of the client (as a restarted bus would); the next one is served as the first. */
  dropClient(): void {
    this.client?.destroy();
    this.client = null;
  }

  async close(): Promise<void> {
    this.client?.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private serve(socket: Socket): void {
    this.client = socket;
    let authenticated = false;
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (!authenticated) {
        const end = pending.indexOf('\r\n');
        if (end < 0) return;
        const line = pending.subarray(0, end).toString('latin1').replace(/^\0/, '');
        pending = pending.subarray(end + 2);
        if (line.startsWith('AUTH ')) socket.write('OK 0123456789abcdef0123456789abcdef\r\n');
        else if (line === 'BEGIN') authenticated = true;
        else socket.write('ERROR\r\n');
      }
      for (;;) {
        if (pending.length < 16) return;
        const fieldsLength = pending.readUInt32LE(12);
        const length = 16 + Math.ceil(fieldsLength / 8) * 8 + pending.readUInt32LE(4);
        if (pending.length < length) return;
        const callSerial = pending.readUInt32LE(8);
        this.calls.push(Buffer.from(pending.subarray(0, length)));
        const text = pending.subarray(0, length).toString('latin1');
        // The bus's own methods are answered as dbus-daemon does, without the replies a test scripted.
        const member = ['Hello', 'AddMatch', 'RemoveMatch'].find((name) => text.includes(name)) ?? 'other';
        const noReply = (pending[2] ?? 0) & 0x1;
        pending = pending.subarray(length);
        if (noReply) continue;
        const { then, ...scripted } = (member === 'other' ? this.replies.shift() : undefined) ?? {};
        if (member === 'AddMatch' && this.refuseMatches !== null && text.includes(this.refuseMatches)) {
          socket.write(
            marshalMessage({
              type: 3,
              serial: this.serial++,
              replySerial: callSerial,
              destination: UNIQUE_NAME,
              sender: 'org.freedesktop.DBus',
              extraFields: [[4, ['s', 'org.freedesktop.DBus.Error.LimitsExceeded']]],
              body: ['s', ['too many rules']],
            }),
          );
          continue;
        }
        const reply = marshalMessage({
          type: 2,
          serial: this.serial++,
          replySerial: callSerial,
          destination: UNIQUE_NAME,
          sender: 'org.freedesktop.DBus',
          ...(member === 'Hello' ? { body: ['s', [UNIQUE_NAME]] as [string, unknown[]] } : {}),
          ...scripted,
        });
        if (member === 'AddMatch' && this.holdMatches !== null && text.includes(this.holdMatches)) {
          this.held.push(() => socket.write(reply));
          continue;
        }
        socket.write(then ? Buffer.concat([reply, then]) : reply);
      }
    });
  }
}
