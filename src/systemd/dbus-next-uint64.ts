/**
 * dbus-next 0.11.3 reads a 64-bit value (`t`, `x`) of a big-endian message with its two halves
 * swapped: its unmarshaller reads two 32-bit words and puts the second above the first, which is
 * right only in little-endian messages. systemd sends messages in its host's byte order, so on
 * s390x every timestamp and counter the runner reads with a `Get` (a snapshot after a restart,
 * systemd's CPU time of an ended task) would be wrong. A big-endian reply whose body is one variant
 * of such a value (what `Get` answers) reaches dbus-next with the halves swapped back, so that it
 * reads the value sent. Other 64-bit values in replies are not read by the runner; the signals it
 * reads itself are read right (./signal-decoder.ts). test/unit/dbus-next-uint64.test.ts fails
 * once dbus-next reads them right itself: then this goes.
 */
import { BIG_ENDIAN, MESSAGE_TYPE_METHOD_RETURN, readHeader, WireReader } from './wire-message.js';

/** The reply as dbus-next must get it to read its 64-bit value right; anything else as it came. */
export function forDbusNext64(message: Buffer): Buffer {
  if (message[0] !== BIG_ENDIAN || message[1] !== MESSAGE_TYPE_METHOD_RETURN) return message;
  const header = readHeader(message);
  if (header.fields.signature !== 'v') return message;
  const reader = new WireReader(message, false);
  const type = reader.signature(header.bodyStart);
  if (type.text !== 't' && type.text !== 'x') return message;
  const at = reader.align(type.end, 8);
  if (at + 8 !== message.length) return message;
  const swapped = Buffer.from(message);
  message.copy(swapped, at, at + 4, at + 8);
  message.copy(swapped, at + 4, at, at + 4);
  return swapped;
}
