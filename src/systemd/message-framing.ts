/**
 * A say on the system bus's incoming messages before dbus-next decodes them (./signal-trimmer.ts):
 * the bytes the socket reads are cut into whole messages, and each reaches dbus-next as `decide`
 * returns it, or not at all. Installed once authentication is done (dbus-next's `connect`), when
 * only messages follow. Bytes that are not messages as the specification frames them (which
 * dbus-daemon never sends) are handed to dbus-next as they come, from then on, for it to judge.
 */
import type { Readable } from 'node:stream';
import { messageLength } from './wire-message.js';

export type MessageDecision = (message: Buffer) => Buffer | null;

export function interceptMessages(socket: Readable, decide: MessageDecision): void {
  const push = socket.push.bind(socket);
  let pending: Buffer | null = null;
  let framing = true;
  // Where the socket hands over what it read (Node's stream_base_commons calls `stream.push(buffer)`).
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null || !framing || !Buffer.isBuffer(chunk)) return push(chunk, encoding);
    const bytes: Buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    const messages: Buffer[] = [];
    let at = 0;
    for (;;) {
      const rest = bytes.subarray(at);
      let length: number | null;
      try {
        length = messageLength(rest);
      } catch {
        framing = false;
        messages.push(rest);
        at = bytes.length;
        break;
      }
      if (length === null || rest.length < length) break;
      const decided = decideSafely(decide, rest.subarray(0, length));
      if (decided) messages.push(decided);
      at += length;
    }
    if (at < bytes.length) pending = bytes.subarray(at);
    let more = true;
    for (const message of messages) more = push(message);
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
