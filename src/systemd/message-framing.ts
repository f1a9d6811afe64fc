/**
 * A say on the system bus's incoming messages before dbus-next decodes them (./signal-trimmer.ts):
 * the bytes the socket reads are cut into whole messages, and each reaches dbus-next as `decide`
 * returns it, or not at all. Only signals up to MAX_DECIDED_BYTES are held until whole and decided
 * on (systemd's PropertiesChanged are a few KiB); every other message passes as its bytes come, so
 * nothing large is held or copied (any local user may send the runner signals of tens of MiB).
 * Installed once authentication is done (dbus-next's `connect`), when only messages follow. Bytes
 * that are not messages as the specification frames them (which dbus-daemon never sends) are
 * handed to dbus-next as they come, from then on, for it to judge.
 */
import type { Readable } from 'node:stream';
import { FIXED_HEADER_BYTES, MESSAGE_TYPE_SIGNAL, messageLength } from './wire-message.js';

export type MessageDecision = (message: Buffer) => Buffer | null;

/** Signals larger than this pass as they came, undecided. */
export const MAX_DECIDED_BYTES = 64 * 1024;

export function interceptMessages(socket: Readable, decide: MessageDecision): void {
  const push = socket.push.bind(socket);
  /** The start of the message being framed: under a fixed header, or a small signal not yet whole. */
  let held: Buffer[] = [];
  let heldBytes = 0;
  /** The length of the small signal being held, once its fixed header is in. */
  let holding: number | null = null;
  /** Bytes of the current message still to pass as they come. */
  let passing = 0;
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
    const release = () => {
      out.push(...held);
      held = [];
      heldBytes = 0;
    };
    while (rest.length > 0) {
      if (passing > 0) {
        const part = rest.subarray(0, passing);
        out.push(part);
        passing -= part.length;
        rest = rest.subarray(part.length);
        continue;
      }
      if (holding === null) {
        if (heldBytes + rest.length < FIXED_HEADER_BYTES) {
          hold(rest);
          break;
        }
        const header = heldBytes === 0 ? rest : Buffer.concat([...held, rest.subarray(0, FIXED_HEADER_BYTES - heldBytes)]);
        let length: number;
        try {
          length = messageLength(header) as number;
        } catch {
          framing = false;
          release();
          out.push(rest);
          break;
        }
        if (header[1] !== MESSAGE_TYPE_SIGNAL || length > MAX_DECIDED_BYTES) {
          passing = length - heldBytes;
          release();
          continue;
        }
        holding = length;
      }
      const missing = holding - heldBytes;
      if (rest.length < missing) {
        hold(rest);
        break;
      }
      hold(rest.subarray(0, missing));
      rest = rest.subarray(missing);
      const message = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, holding);
      held = [];
      heldBytes = 0;
      holding = null;
      const decided = decideSafely(decide, message);
      if (decided) out.push(decided);
    }
    // Nothing handed on: say whether the stream has room, as push() would.
    if (out.length === 0) return socket.readableLength === 0 || socket.readableLength < socket.readableHighWaterMark;
    let more = true;
    for (const part of out) more = push(part);
    return more;
  };
}

/** A message `decide` cannot read is passed on as it came. */
function decideSafely(decide: MessageDecision, message: Buffer): Buffer | null {
  try {
    return decide(message);
  } catch {
    return message;
  }
}
