/**
 * The system bus connection: method calls with explicit signatures (no introspection round trips)
 * and signal matches. The only file that imports the D-Bus library.
 */
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { type Message, type MessageBus, MessageType, Variant, systemBus } from '@jellybrick/dbus-next';
import { forDbusNext64 } from './dbus-next-uint64.js';
import { interceptMessages, type LargeSignalDecision, type MessageDecision, type SignalOrder } from './message-framing.js';
import { MESSAGE_TYPE_METHOD_RETURN } from './wire-message.js';
import { NO_REPLY_EXPECTED, marshalMethodCall } from './wire-writer.js';

export { Variant };

export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface BusSignal {
  /** Set by the bus, never by the sender: the sender's unique name, or the bus's own name. */
  sender: string;
  path: string;
  interface: string;
  member: string;
  body: unknown[];
}

/** What becomes of incoming messages before dbus-next decodes them (./message-framing.ts). */
export interface IncomingMessages {
  decide: MessageDecision;
  keepLarge?: LargeSignalDecision;
}

/** D-Bus error name given to calls that failed because the connection went away. */
export const DISCONNECTED = 'org.freedesktop.DBus.Error.Disconnected';
/** Answers after which a call may or may not have been carried out (a start, a stop). */
export const OUTCOME_UNKNOWN: ReadonlySet<string> = new Set([
  DISCONNECTED,
  'org.freedesktop.DBus.Error.NoReply',
  'org.freedesktop.DBus.Error.Timeout',
]);
/** (Default: 25 s, as libdbus and sd-bus) */
/** Calls awaiting a reply at once; the system bus allows 128 a connection. */
const MAX_IN_FLIGHT = 64;
const CALL_TIMEOUT_MS = 25_000;

export class BusCallError extends Error {
  constructor(
    readonly dbusName: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'BusCallError';
  }
}

/**
 * What of dbus-next the bus uses beyond its typed surface: its connection's stream (calls are
 * written there, ./wire-writer.ts) and the table it answers replies from, by serial.
 */
interface DbusNextInternals {
  _connection?: EventEmitter & { stream?: Readable & Writable };
  _methodReturnHandlers?: Record<number, (reply: Message) => void>;
}

export class SystemBus extends EventEmitter<{ signal: [BusSignal]; disconnect: [Error] }> {
  private readonly pending = new Set<(error: Error) => void>();
  private ended = false;
  private corked = false;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  /** Where the messages the client reads itself wait for the signals before them (./message-framing.ts). */
  private order: SignalOrder | null = null;

  private constructor(private readonly bus: MessageBus) {
    super();
    bus.on('message', (message) => {
      if (message.type !== MessageType.SIGNAL) return;
      try {
        // Every signal, also those sent to our unique name by anyone: the client decides whom to believe.
        this.emit('signal', {
          // Typed as always there; a message without the header field has none.
          sender: (message.sender as string | undefined) ?? '',
          path: message.path,
          interface: message.interface,
          member: message.member,
          body: message.body,
        });
      } finally {
        this.order?.signalHandedOn();
      }
    });
    const lost = (error: Error) => this.lost(error);
    (bus as unknown as EventEmitter).on('error', lost);
    // dbus-next does not report the end of the stream on the bus object, only on its connection.
    const connection = (bus as unknown as { _connection?: EventEmitter })._connection;
    connection?.on('end', () => lost(new Error('the system bus closed the connection')));
  }

  /**
   * Connects to `$DBUS_SYSTEM_BUS_ADDRESS` (default unix:path=/run/dbus/system_bus_socket).
   * `incoming`: what becomes of each message before it is decoded (./message-framing.ts).
   */
  static async connect(incoming?: IncomingMessages): Promise<SystemBus> {
    const bus = systemBus();
    // Listening from the first message on: each signal dbus-next hands on is counted in the order.
    const systemBusConnection = new SystemBus(bus);
    const connection = (bus as unknown as { _connection: EventEmitter & { stream?: Readable } })._connection;
    // Emitted once authenticated, before dbus-next reads the first message.
    if (incoming) {
      connection.once('connect', () => {
        if (!connection.stream) return;
        // Replies are the bus's own concern (their 64-bit values: ./dbus-next-uint64.ts); signals the caller's.
        const decide: MessageDecision = (message) =>
          message[1] === MESSAGE_TYPE_METHOD_RETURN ? forDbusNext64(message) : incoming.decide(message);
        systemBusConnection.order = interceptMessages(connection.stream, decide, incoming.keepLarge);
      });
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      (bus as unknown as EventEmitter).once('error', onError);
      bus.once('connect', () => {
        (bus as unknown as EventEmitter).off('error', onError);
        resolve();
      });
    });
    return systemBusConnection;
  }

  async call(call: MethodCall): Promise<unknown[]> {
    await this.acquireSlot();
    try {
      return await this.send(call);
    } finally {
      this.releaseSlot();
    }
  }

  /**
   * As call(), but on the socket before this returns when a slot is free (call() writes a microtask
   * later, held with the tick's other calls until the next tick), so before anything the process
   * writes elsewhere after it.
   */
  callNow(call: MethodCall): Promise<unknown[]> {
    if (this.inFlight >= MAX_IN_FLIGHT) return this.call(call);
    this.inFlight += 1;
    return this.send(call, 'now').finally(() => this.releaseSlot());
  }

  /** A call whose answer nobody reads (the bus sends none, errors included), written now. */
  callWithoutReply(call: MethodCall): void {
    const stream = (this.bus as unknown as DbusNextInternals)._connection?.stream;
    if (this.ended || !stream?.writable) return;
    this.coalesceWrites(stream);
    stream.write(marshalMethodCall(call, this.bus.newSerial(), NO_REPLY_EXPECTED));
  }

  /**
   * The system bus refuses more than 128 calls awaiting replies on one connection
   * (max_replies_per_connection): a burst of snapshots (recovery, 1000 tasks ending at once) waits
   * its turn here instead of failing with LimitsExceeded.
   */
  private async acquireSlot(): Promise<void> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight += 1;
      return;
    }
    // The slot is handed over by releaseSlot, inFlight unchanged.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight -= 1;
  }

  /**
   * The call is marshalled here (./wire-writer.ts) and written to dbus-next's stream with a serial
   * of dbus-next's; dbus-next decodes the reply and hands it to the handler left in its table.
   */
  private async send(call: MethodCall, when: 'now' | 'this tick' = 'this tick'): Promise<unknown[]> {
    const internals = this.bus as unknown as DbusNextInternals;
    const stream = internals._connection?.stream;
    const handlers = internals._methodReturnHandlers;
    if (this.ended || !stream?.writable) throw new BusCallError(DISCONNECTED, 'not connected to the system bus');
    if (!handlers)
      throw new Error("dbus-next keeps no table of replies: this version's internals are not the ones the runner was written for");
    const serial = this.bus.newSerial();
    const bytes = marshalMethodCall(call, serial);
    let fail: (error: Error) => void = () => {};
    const reply = new Promise<unknown[]>((resolve, reject) => {
      fail = reject;
      handlers[serial] = (answer) => {
        if (answer.type !== MessageType.ERROR) {
          resolve(answer.body);
          return;
        }
        // Typed as always there; an error without the header field has none.
        const name = (answer.errorName as string | undefined) ?? 'org.freedesktop.DBus.Error.Failed';
        const text: unknown = answer.body[0];
        // An error reply without a text is told by its name.
        reject(new BusCallError(name, typeof text === 'string' && text !== '' ? text : name));
      };
    });
    this.pending.add(fail);
    if (when === 'now') this.flushWrites(stream);
    else this.coalesceWrites(stream);
    const timer = setTimeout(
      () => fail(new BusCallError('org.freedesktop.DBus.Error.NoReply', `${call.member}: no reply`)),
      CALL_TIMEOUT_MS,
    );
    try {
      stream.write(bytes);
      return await reply;
    } finally {
      clearTimeout(timer);
      this.pending.delete(fail);
      // A reply that never came (a timeout, a lost bus) leaves nothing behind in dbus-next's table.
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- dbus-next's table is keyed by serial
      delete handlers[serial];
    }
  }

  /**
   * Calls made in the same tick (a snapshot's Gets, a burst of refreshes) leave in one writev
   * instead of a write(2) each: measured, socket writes were the runner's largest CPU cost per start.
   */
  /** What the calls of this tick wrote leaves now, in order; the write that follows is not held. */
  private flushWrites(stream: Writable): void {
    if (!this.corked) return;
    this.corked = false;
    stream.uncork();
  }

  private coalesceWrites(stream: Writable): void {
    if (this.corked) return;
    this.corked = true;
    stream.cork();
    process.nextTick(() => {
      // Flushed already (flushWrites): nothing held.
      if (!this.corked) return;
      this.corked = false;
      stream.uncork();
    });
  }

  async addMatch(rule: string): Promise<void> {
    await this.call(matchCall('AddMatch', rule));
  }

  /** AddMatch, written now when a slot is free (callNow). */
  async addMatchNow(rule: string): Promise<void> {
    await this.callNow(matchCall('AddMatch', rule));
  }

  /** RemoveMatch, written now; the bus's answer is not asked for (a rule this connection added goes). */
  removeMatchNow(rule: string): void {
    this.callWithoutReply(matchCall('RemoveMatch', rule));
  }

  close(): void {
    this.ended = true;
    this.order?.close();
    // Calls under way end now, not at their timeout: nothing answers them on a closed connection.
    for (const fail of this.pending) fail(new BusCallError(DISCONNECTED, 'the connection to the system bus was closed'));
    this.pending.clear();
    this.bus.disconnect();
  }

  /** Gives the connection up as lost (its state on the bus is not what it should be): `disconnect` follows. */
  drop(reason: string): void {
    this.lost(new Error(reason));
  }

  private lost(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    // A signal dbus-next could not decode never takes its place in the order: nothing waits on it.
    this.order?.close();
    for (const fail of this.pending) fail(new BusCallError(DISCONNECTED, `the system bus went away: ${error.message}`));
    this.pending.clear();
    this.emit('disconnect', error);
    try {
      this.bus.disconnect();
    } catch {
      // already gone
    }
  }
}

function matchCall(member: 'AddMatch' | 'RemoveMatch', rule: string): MethodCall {
  return {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature: 's',
    body: [rule],
  };
}
