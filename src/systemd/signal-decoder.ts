/**
 * systemd's signals read here, on the wire, instead of by dbus-next: a followed unit's
 * PropertiesChanged (the properties the runner reads) and a JobRemoved somebody waits for. dbus-next
 * makes a Message object of each, decodes every value into objects and passes it through its event
 * chain; measured, that was most of the runner's CPU for each signal it keeps (docs/benchmarks.md,
 * round two, fifth session). A JobRemoved nobody on this connection waits for is dropped unread:
 * systemd sends one for every job on the host, and the privileged starter and the runner each wait
 * only for their own.
 *
 * Only signals from systemd's current owner (the same test as ./signals.ts) are read here; anything
 * else, and any value of a type not read here, is left to ./signal-trimmer.ts and dbus-next.
 */
import { MESSAGE_TYPE_SIGNAL, readHeader, WireFormatError, WireReader, type WireHeader } from './wire-message.js';
import { BUS_NAME, forgedMember, MANAGER, PROPERTIES, type ForgedMember, type SignalMeaning } from './signals.js';
import type { SignalTrimPolicy } from './signal-trimmer.js';
import { UNIT_PATH_PREFIX } from './unit-path.js';

const MANAGER_PATH = '/org/freedesktop/systemd1';
const JOB_REMOVED_SIGNATURE = 'uoss';
const PROPERTIES_CHANGED_SIGNATURE = 'sa{sv}as';

export interface SignalReadPolicy extends SignalTrimPolicy {
  /** Whether anyone on this connection waits for the end of this unit's job. */
  awaitsJob(unitName: string): boolean;
}

/**
 * What the wire says a signal is: read here; dropped (null: a unit not followed, a job nobody waits
 * for); or left to ./signal-trimmer.ts and dbus-next (`passOn`).
 */
export type WireSignal =
  | Extract<SignalMeaning, { kind: 'jobRemoved' | 'propertiesChanged' }>
  | null
  | { kind: 'passOn' }
  /** A signal with a file descriptor from anyone but systemd or the bus: forged, and dbus-next cannot read it. */
  | { kind: 'forgedWithDescriptor'; sender: string; member: ForgedMember; path: string };

const PASS_ON = { kind: 'passOn' } as const;

/** Reads one whole message when it is systemd's JobRemoved or a unit's PropertiesChanged. */
export function readSystemdSignal(message: Buffer, policy: SignalReadPolicy): WireSignal {
  if (message[1] !== MESSAGE_TYPE_SIGNAL) return PASS_ON;
  const header = readHeader(message);
  const { path, interface: iface, member, sender, signature } = header.fields;
  const owner = policy.systemdOwner();
  // dbus-next throws out of its stream's handler on a file descriptor the message did not bring
  // (an `h` whose index has no descriptor, in a variant too), which would end the process.
  if (sender !== BUS_NAME && (owner === null || sender !== owner) && holdsDescriptor(message, header)) {
    return { kind: 'forgedWithDescriptor', sender: sender ?? '', member: forgedMember(member ?? ''), path: (path ?? '').slice(0, 200) };
  }
  if (owner === null || sender !== owner) return PASS_ON;
  if (iface === MANAGER && member === 'JobRemoved' && path === MANAGER_PATH && signature === JOB_REMOVED_SIGNATURE) {
    return jobRemoved(message, header, policy);
  }
  if (iface === PROPERTIES && member === 'PropertiesChanged' && path?.startsWith(UNIT_PATH_PREFIX)) {
    if (!policy.watches(path)) return null;
    if (signature !== PROPERTIES_CHANGED_SIGNATURE) return PASS_ON;
    return propertiesChanged(message, header, path, policy.keeps);
  }
  return PASS_ON;
}

/** Whether the body holds a Unix file descriptor anywhere; a body that does not read as its signature: as if it did. */
function holdsDescriptor(message: Buffer, header: WireHeader): boolean {
  const signature = header.fields.signature ?? '';
  if (!signature.includes('h') && !signature.includes('v')) return false;
  try {
    return new WireReader(message, header.littleEndian).holdsDescriptor(header.bodyStart, signature);
  } catch {
    return true;
  }
}

function jobRemoved(message: Buffer, header: WireHeader, policy: SignalReadPolicy): WireSignal {
  const reader = new WireReader(message, header.littleEndian);
  const job = reader.string(reader.skip(header.bodyStart, 'u').end);
  const unit = reader.string(job.end);
  const result = reader.string(unit.end);
  if (result.end !== message.length) throw new WireFormatError('JobRemoved: the body is longer than its signature');
  if (!policy.awaitsJob(unit.text)) return null;
  return { kind: 'jobRemoved', unitName: unit.text, result: result.text };
}

/** The kept properties' values as dbus-next gives them (s → string, t → bigint, ay → Buffer, …). */
function propertiesChanged(message: Buffer, header: WireHeader, path: string, keep: ReadonlySet<string>): WireSignal {
  const reader = new WireReader(message, header.littleEndian);
  const iface = reader.string(header.bodyStart);
  const arrayAt = reader.align(iface.end, 4);
  const entriesStart = reader.align(arrayAt + 4, 8);
  const entriesEnd = entriesStart + reader.uint32(arrayAt);
  const wanted = namesByLength(keep);
  const changed: Record<string, unknown> = {};
  let at = entriesStart;
  while (at < entriesEnd) {
    // Tens of properties a signal, a few of them read: names compared as bytes, not decoded.
    const name = reader.stringBytes(reader.align(at, 8));
    const kept = wanted
      .get(name.length)
      ?.find((candidate) => message.compare(candidate.bytes, 0, name.length, name.start, name.start + name.length) === 0);
    if (kept) {
      const type = reader.signature(name.end);
      const value = readValue(reader, type.end, type.text);
      if (value === null) return PASS_ON;
      changed[kept.name] = value.value;
    }
    at = reader.skip(name.end, 'v').end;
  }
  if (at !== entriesEnd) throw new WireFormatError('PropertiesChanged: entries end elsewhere than their length says');
  // The invalidated properties' names: nothing the runner reads (nor did it when dbus-next decoded them).
  if (reader.skip(reader.align(entriesEnd, 4), 'as').end !== message.length) {
    throw new WireFormatError('PropertiesChanged: the body is longer than its signature');
  }
  return { kind: 'propertiesChanged', path, interface: iface.text, changed };
}

const byLength = new WeakMap<ReadonlySet<string>, Map<number, { name: string; bytes: Buffer }[]>>();

/** The names of a set by their length in bytes, each with its bytes (made once a set). */
function namesByLength(names: ReadonlySet<string>): Map<number, { name: string; bytes: Buffer }[]> {
  let found = byLength.get(names);
  if (!found) {
    found = new Map();
    for (const name of names) {
      const bytes = Buffer.from(name, 'utf8');
      found.set(bytes.length, [...(found.get(bytes.length) ?? []), { name, bytes }]);
    }
    byLength.set(names, found);
  }
  return found;
}

/** A value of the types the runner's properties have; null for any other type. */
function readValue(reader: WireReader, at: number, type: string): { value: unknown } | null {
  const bytes = reader.bytes;
  const le = reader.littleEndian;
  switch (type) {
    case 's':
    case 'o':
      return { value: reader.string(at).text };
    case 'b':
      return { value: reader.uint32(reader.align(at, 4)) !== 0 };
    case 'u':
      return { value: reader.uint32(reader.align(at, 4)) };
    case 'i': {
      const start = reader.align(at, 4);
      reader.uint32(start); // bounds
      return { value: le ? bytes.readInt32LE(start) : bytes.readInt32BE(start) };
    }
    case 't': {
      const start = reader.align(at, 8);
      reader.skip(start, 't');
      return { value: le ? bytes.readBigUInt64LE(start) : bytes.readBigUInt64BE(start) };
    }
    case 'ay': {
      const start = reader.align(at, 4);
      const end = reader.skip(start, 'ay').end;
      return { value: Buffer.from(bytes.subarray(start + 4, end)) };
    }
    default:
      return null;
  }
}
