/**
 * A say on the system bus's incoming messages before dbus-next decodes them (./signal-trimmer.ts):
 * the bytes the socket reads are cut into whole messages, and each reaches dbus-next as `decide`
 * returns it, or not at all. Only signals, and big-endian method replies (./dbus-next-uint64.ts), up
 * to MAX_DECIDED_BYTES are held until whole and decided on (systemd's PropertiesChanged are a few
 * KiB); a larger signal is held only until its header
 * fields are in, and `keepLarge` says from them whether its bytes pass on or are skipped as they
 * come (any local user may send the runner signals of tens of MiB; one whose header fields alone
 * are that large is judged without them); every other message passes as its bytes come, so nothing
 * large is held or copied. Installed once authentication is done
 * (dbus-next's `connect`), when only messages follow. Bytes that are not messages as the
 * specification frames them (which dbus-daemon never sends) are handed to dbus-next as they come,
 * from then on, for it to judge.
 *
 * `decide` may also read a message itself (./signal-decoder.ts): it never reaches dbus-next, and its
 * `deliver` runs in the message's order among the signals dbus-next hands on (the caller says when
 * dbus-next has handed one on: signalHandedOn). dbus-next acts on a method reply in a later
 * microtask, so only its signals are ordered against.
 */
import type { Readable } from 'node:stream';
import {
  BIG_ENDIAN,
  FIXED_HEADER_BYTES,
  MESSAGE_TYPE_METHOD_RETURN,
  MESSAGE_TYPE_SIGNAL,
  headerLength,
  messageLength,
} from './wire-message.js';

/** A message read by the decision itself: `deliver` acts on it. */
export interface ReadHere {
  deliver: () => void;
}
export type MessageDecision = (message: Buffer) => Buffer | null | ReadHere;

export interface SignalOrder {
  /** dbus-next has handed on a signal it was given: the messages read here after it are delivered now. */
  signalHandedOn(): void;
  /** The connection is lost: nothing read here is delivered any more. */
  close(): void;
}
/** In the order: a signal given to dbus-next, not yet handed on by it. */
const WITH_DBUS_NEXT = null;
/**
 * From a large signal's fixed header and header fields (its first bytes): whether it reaches
 * dbus-next. Null when its header fields alone are over MAX_DECIDED_BYTES (systemd's and the bus's
 * are a few hundred bytes; an object path has no limit of its own).
 */
export type LargeSignalDecision = (header: Buffer | null) => boolean;

/** Signals larger than this are not held whole. */
export const MAX_DECIDED_BYTES = 64 * 1024;

export function interceptMessages(socket: Readable, decide: MessageDecision, keepLarge: LargeSignalDecision = () => true): SignalOrder {
  const push = socket.push.bind(socket);
  /** Signals given to dbus-next and messages read here, in the order they came, from the first signal dbus-next has not handed on. */
  const order: (ReadHere | typeof WITH_DBUS_NEXT)[] = [];
  let closed = false;
  const readHere = (message: ReadHere) => {
    if (closed) return;
    if (order.length === 0) deliverSafely(message);
    else order.push(message);
  };
  /** The start of the message being framed: under a fixed header, or what is held of it. */
  let held: Buffer[] = [];
  let heldBytes = 0;
  /** Once a message's fixed header is in and it is held: how much of it is held, and what for. */
  let holding: { bytes: number; whole: boolean; length: number } | null = null;
  /** Bytes of the current message still to pass as they come (or to skip, when `skipping`). */
  let passing = 0;
  let skipping = false;
  let framing = true;
  // Where the socket hands over what it read (Node's stream_base_commons calls `stream.push(buffer)`).
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null || !framing || !Buffer.isBuffer(chunk)) return push(chunk, encoding);
    const out: Buffer[] = [];
    let rest: Buffer = chunk;
    const hold = (bytes: Buffer) => {
      held.push(bytes);
      heldBytes += bytes.length;
    };
    const takeHeld = () => {
      const all = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
      held = [];
      heldBytes = 0;
      return all;
    };
    while (rest.length > 0) {
      if (passing > 0) {
        const part = rest.subarray(0, passing);
        if (!skipping) out.push(part);
        passing -= part.length;
        rest = rest.subarray(part.length);
        continue;
      }
      if (holding === null) {
        if (heldBytes + rest.length < FIXED_HEADER_BYTES) {
          hold(rest);
          break;
        }
        const fixed = heldBytes === 0 ? rest : Buffer.concat([...held, rest.subarray(0, FIXED_HEADER_BYTES - heldBytes)]);
        let length: number;
        let fieldsEnd: number;
        try {
          length = messageLength(fixed) as number;
          fieldsEnd = headerLength(fixed);
        } catch {
          framing = false;
          out.push(...held, rest);
          held = [];
          heldBytes = 0;
          break;
        }
        // Signals, and big-endian method replies (./dbus-next-uint64.ts), are decided on; the rest passes.
        const bigEndianReply = fixed[0] === BIG_ENDIAN && fixed[1] === MESSAGE_TYPE_METHOD_RETURN && length <= MAX_DECIDED_BYTES;
        if ((fixed[1] !== MESSAGE_TYPE_SIGNAL && !bigEndianReply) || fieldsEnd > MAX_DECIDED_BYTES) {
          passing = length - heldBytes;
          skipping = fixed[1] === MESSAGE_TYPE_SIGNAL && !keepSafely(keepLarge, null);
          if (fixed[1] === MESSAGE_TYPE_SIGNAL && !skipping) order.push(WITH_DBUS_NEXT);
          if (!skipping) out.push(...held);
          held = [];
          heldBytes = 0;
          continue;
        }
        const whole = length <= MAX_DECIDED_BYTES;
        holding = { bytes: whole ? length : fieldsEnd, whole, length };
      }
      const missing = holding.bytes - heldBytes;
      if (rest.length < missing) {
        hold(rest);
        break;
      }
      hold(rest.subarray(0, missing));
      rest = rest.subarray(missing);
      const { whole, length } = holding;
      holding = null;
      const bytes = takeHeld();
      if (whole) {
        const decided = decideSafely(decide, bytes);
        if (Buffer.isBuffer(decided)) {
          if (bytes[1] === MESSAGE_TYPE_SIGNAL) order.push(WITH_DBUS_NEXT);
          out.push(decided);
        } else if (decided !== null) readHere(decided);
        continue;
      }
      // A large signal: its header fields decide whether the rest passes or is skipped.
      skipping = !keepSafely(keepLarge, bytes);
      if (!skipping) {
        order.push(WITH_DBUS_NEXT);
        out.push(bytes);
      }
      passing = length - bytes.length;
    }
    // Nothing handed on: say whether the stream has room, as push() would.
    if (out.length === 0) return socket.readableLength === 0 || socket.readableLength < socket.readableHighWaterMark;
    let more = true;
    for (const part of out) more = push(part);
    return more;
  };
  return {
    signalHandedOn() {
      // A signal framed here (not one of bytes handed on unframed, which leave the order empty).
      if (order[0] === WITH_DBUS_NEXT) order.shift();
      while (!closed && order.length > 0 && order[0] !== WITH_DBUS_NEXT) deliverSafely(order.shift() as ReadHere);
    },
    close() {
      closed = true;
      order.length = 0;
    },
  };
}

/** As dbus-next does with an error thrown by a handler of a message: it does not stop the reading. */
function deliverSafely(message: ReadHere): void {
  try {
    message.deliver();
  } catch {
    // The handlers (the client's) report their own failures.
  }
}

/** A message `decide` cannot read is passed on as it came. */
function decideSafely(decide: MessageDecision, message: Buffer): ReturnType<MessageDecision> {
  try {
    return decide(message);
  } catch {
    return message;
  }
}

function keepSafely(keep: LargeSignalDecision, header: Buffer | null): boolean {
  try {
    return keep(header);
  } catch {
    return true;
  }
}
