/**
 * systemd's PropertiesChanged signals, cut down before dbus-next decodes them. systemd sends one
 * for each interface of a unit at each change of its state, each with every property that changed
 * (tens), and dbus-next decodes all of it into objects. The bus sends the runner those of the units
 * it follows (a match rule each, ./client.ts), or of every unit beyond UNIT_MATCH_LIMIT followed.
 * So, on the wire, a signal from systemd's current owner of its name about a unit the runner does
 * not watch is dropped, and one about a watched unit keeps only the properties the runner reads.
 * Anything else passes as it came: another sender's signals are the client's to judge (forged).
 */
import { MESSAGE_TYPE_SIGNAL, readHeader, readHeaderFields, WireFormatError, WireReader, type WireHeader } from './wire-message.js';
import { BUS_NAME, PROPERTIES, forgedMember, type ForgedMember } from './signals.js';
import { UNIT_PATH_PREFIX } from './unit-path.js';
const PROPERTIES_CHANGED_SIGNATURE = 'sa{sv}as';

export interface SignalTrimPolicy {
  /** The unique name that owns org.freedesktop.systemd1 now; null when unknown (nothing is dropped). */
  systemdOwner(): string | null;
  /** Whether the runner follows the unit of this object path. */
  watches(path: string): boolean;
  /** The properties kept in a watched unit's signals. */
  keeps: ReadonlySet<string>;
}

/** What becomes of one whole message: itself, a shorter copy, or null (dropped). */
export function trimIncoming(message: Buffer, policy: SignalTrimPolicy): Buffer | null {
  if (message[1] !== MESSAGE_TYPE_SIGNAL) return message;
  const header = readHeader(message);
  const { path, interface: iface, member, sender, signature } = header.fields;
  if (iface !== PROPERTIES || member !== 'PropertiesChanged' || !path?.startsWith(UNIT_PATH_PREFIX)) return message;
  const owner = policy.systemdOwner();
  if (owner === null || sender !== owner) return message;
  if (!policy.watches(path)) return null;
  if (signature !== PROPERTIES_CHANGED_SIGNATURE) return message;
  return keepProperties(message, header, policy.keeps);
}

/**
 * A signal too large to be held whole (./message-framing.ts), judged by its header alone: null when
 * it comes from systemd's current owner or from the bus itself, which the client reads; else who sent
 * it, for the client to count as forged while its bytes are skipped unread (classifySignal would
 * refuse it after dbus-next had decoded all of it: seconds of CPU for the bus's largest messages).
 */
export function unbelievedLargeSignal(
  header: Buffer | null,
  policy: Pick<SignalTrimPolicy, 'systemdOwner'>,
): { sender: string; member: ForgedMember; path: string } | null {
  // Header fields over 64 KiB: neither systemd's nor the bus's (theirs are a few hundred bytes).
  if (header === null) return { sender: '', member: 'other', path: '' };
  const { sender = '', member = '', path = '' } = readHeaderFields(header).fields;
  if (sender === BUS_NAME || (sender !== '' && sender === policy.systemdOwner())) return null;
  return { sender, member: forgedMember(member), path: path.slice(0, 200) };
}

/**
 * The message with only the `keep` entries of its `a{sv}`. Each dict entry starts at a multiple
 * of 8 from the message's start, so an entry copied whole to another multiple of 8 stays aligned
 * inside; the `as` after it needs 4 and is copied whole to a multiple of 4.
 */
function keepProperties(message: Buffer, header: WireHeader, keep: ReadonlySet<string>): Buffer {
  const reader = new WireReader(message, header.littleEndian);
  const iface = reader.string(header.bodyStart);
  const arrayAt = reader.align(iface.end, 4);
  const arrayLength = reader.uint32(arrayAt);
  const entriesStart = reader.align(arrayAt + 4, 8);
  const entriesEnd = entriesStart + arrayLength;
  const kept: { start: number; end: number }[] = [];
  let dropped = 0;
  let at = entriesStart;
  while (at < entriesEnd) {
    const start = reader.align(at, 8);
    const name = reader.string(start);
    const value = reader.skip(name.end, 'v');
    if (keep.has(name.text)) kept.push({ start, end: value.end });
    else dropped += 1;
    at = value.end;
  }
  if (at !== entriesEnd) throw new WireFormatError('PropertiesChanged: entries end elsewhere than their length says');
  const invalidatedAt = reader.align(entriesEnd, 4);
  const invalidatedEnd = reader.skip(invalidatedAt, 'as').end;
  if (invalidatedEnd !== message.length) throw new WireFormatError('PropertiesChanged: the body is longer than its signature');
  if (dropped === 0) return message;

  const out = Buffer.alloc(message.length); // zeros: the padding
  message.copy(out, 0, 0, entriesStart);
  let write = entriesStart;
  for (const entry of kept) {
    write = Math.ceil(write / 8) * 8;
    write += message.copy(out, write, entry.start, entry.end);
  }
  const newArrayLength = write - entriesStart;
  write = Math.ceil(write / 4) * 4;
  write += message.copy(out, write, invalidatedAt, invalidatedEnd);
  const trimmed = out.subarray(0, write);
  writeUInt32(trimmed, arrayAt, newArrayLength, header.littleEndian);
  writeUInt32(trimmed, 4, write - header.bodyStart, header.littleEndian);
  return trimmed;
}

function writeUInt32(bytes: Buffer, at: number, value: number, littleEndian: boolean): void {
  if (littleEndian) bytes.writeUInt32LE(value, at);
  else bytes.writeUInt32BE(value, at);
}
