/**
 * Method calls marshalled here, in little-endian D-Bus wire format, instead of by dbus-next: its
 * marshaller parses the signature and builds intermediate arrays for every value, and a task start's
 * StartTransientUnit (forty-odd properties in variants) cost the privileged starter 0.65 ms of its
 * 3.1 ms a start (docs/benchmarks.md). Values come in the shapes dbus-next takes (Variant objects,
 * structs as arrays, bigint or number for 64-bit integers, Buffer or number arrays for `ay`), so a
 * call reads the same either way (test/unit/wire-writer.test.ts compares the bytes with dbus-next's).
 * No file descriptors (`h`) and no dict entries beyond `a{..}` of basic keys: the runner sends neither.
 */
import type { MethodCall } from './bus.js';

export class MarshalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MarshalError';
  }
}

/** A value's type, parsed once per signature. */
type TypeNode =
  | { kind: 'basic'; code: string }
  | { kind: 'array'; element: TypeNode; dict: boolean }
  | { kind: 'struct'; members: TypeNode[] }
  | { kind: 'variant' };

interface VariantLike {
  signature: string;
  value: unknown;
}

const MESSAGE_TYPE_METHOD_CALL = 1;
const PROTOCOL_VERSION = 1;
const LITTLE_ENDIAN = 0x6c; // 'l'
const FIELD_PATH = 1;
const FIELD_INTERFACE = 2;
const FIELD_MEMBER = 3;
const FIELD_DESTINATION = 6;
const FIELD_SIGNATURE = 8;
/** The specification's limit on a message (and dbus-daemon's default on the system bus is lower). */
const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
const MAX_SIGNATURE_BYTES = 255;

const parsed = new Map<string, TypeNode[]>();

/** The types of a signature, in order (parsed once, then kept: the runner sends a handful of them). */
export function parseSignature(signature: string): TypeNode[] {
  const known = parsed.get(signature);
  if (known) return known;
  if (signature.length > MAX_SIGNATURE_BYTES) throw new MarshalError(`signature longer than ${MAX_SIGNATURE_BYTES}: ${signature}`);
  const nodes: TypeNode[] = [];
  let at = 0;
  while (at < signature.length) {
    const [node, next] = parseOne(signature, at, 0);
    nodes.push(node);
    at = next;
  }
  if (parsed.size < 256) parsed.set(signature, nodes);
  return nodes;
}

function parseOne(signature: string, at: number, depth: number): [TypeNode, number] {
  if (depth > 64) throw new MarshalError(`signature nested too deep: ${signature}`);
  const code = signature[at];
  switch (code) {
    case 'y':
    case 'b':
    case 'n':
    case 'q':
    case 'i':
    case 'u':
    case 'x':
    case 't':
    case 'd':
    case 's':
    case 'o':
    case 'g':
      return [{ kind: 'basic', code }, at + 1];
    case 'v':
      return [{ kind: 'variant' }, at + 1];
    case 'a': {
      if (signature[at + 1] === '{') {
        const [key, afterKey] = parseOne(signature, at + 2, depth + 1);
        if (key.kind !== 'basic') throw new MarshalError(`a dict's key must be a basic type: ${signature}`);
        const [value, afterValue] = parseOne(signature, afterKey, depth + 1);
        if (signature[afterValue] !== '}') throw new MarshalError(`unclosed dict entry: ${signature}`);
        return [{ kind: 'array', element: { kind: 'struct', members: [key, value] }, dict: true }, afterValue + 1];
      }
      const [element, next] = parseOne(signature, at + 1, depth + 1);
      return [{ kind: 'array', element, dict: false }, next];
    }
    case '(': {
      const members: TypeNode[] = [];
      let next = at + 1;
      while (signature[next] !== ')') {
        if (next >= signature.length) throw new MarshalError(`unclosed struct: ${signature}`);
        const [member, after] = parseOne(signature, next, depth + 1);
        members.push(member);
        next = after;
      }
      if (members.length === 0) throw new MarshalError(`empty struct: ${signature}`);
      return [{ kind: 'struct', members }, next + 1];
    }
    default:
      throw new MarshalError(`type ${JSON.stringify(code ?? '')} not sent here: ${signature}`);
  }
}

function alignmentOf(node: TypeNode): number {
  switch (node.kind) {
    case 'struct':
      return 8;
    case 'array':
      return 4;
    case 'variant':
      return 1;
    case 'basic':
      switch (node.code) {
        case 'y':
        case 'g':
          return 1;
        case 'n':
        case 'q':
          return 2;
        case 'x':
        case 't':
        case 'd':
          return 8;
        default:
          return 4;
      }
  }
}

/** A growing buffer written at increasing offsets, every offset counted from the message's start. */
class Output {
  buffer: Buffer;
  at = 0;

  constructor(size: number) {
    this.buffer = Buffer.alloc(size);
  }

  ensure(bytes: number): void {
    const needed = this.at + bytes;
    if (needed <= this.buffer.length) return;
    if (needed > MAX_MESSAGE_BYTES) throw new MarshalError(`message larger than ${MAX_MESSAGE_BYTES} bytes`);
    const grown = Buffer.alloc(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.at);
    this.buffer = grown;
  }

  /** Pads with zeros up to the boundary (the buffer is zero-filled: only the offset moves). */
  align(boundary: number): void {
    const padded = (this.at + boundary - 1) & ~(boundary - 1);
    this.ensure(padded - this.at);
    this.at = padded;
  }

  uint32(value: number): void {
    this.align(4);
    this.ensure(4);
    this.buffer.writeUInt32LE(value, this.at);
    this.at += 4;
  }

  string(text: string): void {
    this.align(4);
    const length = Buffer.byteLength(text, 'utf8');
    this.ensure(4 + length + 1);
    this.buffer.writeUInt32LE(length, this.at);
    this.buffer.write(text, this.at + 4, 'utf8');
    this.at += 4 + length + 1;
  }

  signature(text: string): void {
    if (text.length > MAX_SIGNATURE_BYTES) throw new MarshalError(`signature longer than ${MAX_SIGNATURE_BYTES}`);
    this.ensure(1 + text.length + 1);
    this.buffer[this.at] = text.length;
    this.buffer.write(text, this.at + 1, 'latin1');
    this.at += 1 + text.length + 1;
  }
}

function write(out: Output, node: TypeNode, value: unknown): void {
  switch (node.kind) {
    case 'basic':
      writeBasic(out, node.code, value);
      return;
    case 'variant': {
      if (!isVariant(value)) throw new MarshalError(`expected a Variant, got ${typeof value}`);
      const types = parseSignature(value.signature);
      const [type] = types;
      if (types.length !== 1 || type === undefined) throw new MarshalError(`a variant holds one type: ${value.signature}`);
      out.signature(value.signature);
      write(out, type, value.value);
      return;
    }
    case 'struct': {
      if (!Array.isArray(value) || value.length !== node.members.length) {
        throw new MarshalError(`expected a struct of ${node.members.length} members`);
      }
      out.align(8);
      node.members.forEach((member, index) => write(out, member, value[index]));
      return;
    }
    case 'array':
      writeArray(out, node, value);
  }
}

function writeArray(out: Output, node: Extract<TypeNode, { kind: 'array' }>, value: unknown): void {
  out.uint32(0);
  const lengthAt = out.at - 4;
  out.align(alignmentOf(node.element));
  const start = out.at;
  if (node.element.kind === 'basic' && node.element.code === 'y' && value instanceof Uint8Array) {
    out.ensure(value.length);
    out.buffer.set(value, out.at);
    out.at += value.length;
  } else if (node.dict) {
    const entries = value instanceof Map ? [...(value as Map<unknown, unknown>)] : Object.entries(value as object);
    for (const entry of entries) write(out, node.element, entry);
  } else {
    if (!Array.isArray(value)) throw new MarshalError(`expected an array, got ${typeof value}`);
    for (const element of value) write(out, node.element, element);
  }
  const length = out.at - start;
  if (length > 64 * 1024 * 1024) throw new MarshalError('array longer than 64 MiB');
  out.buffer.writeUInt32LE(length, lengthAt);
}

/** The specification's object path: `/`, or `/`-separated elements of [A-Za-z0-9_]. */
const OBJECT_PATH = /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/;

/**
 * A string the bus takes: dbus-daemon checks every message and disconnects a sender whose message
 * breaks the specification (a NUL inside a string, a malformed object path): the runner would lose
 * the bus over one bad value. Refused here instead, before anything is written.
 */
function checkedString(code: 's' | 'o', value: unknown): string {
  if (typeof value !== 'string') throw new MarshalError(`expected a string, got ${typeof value}`);
  if (value.includes('\0')) throw new MarshalError('a string with a NUL character');
  if (code === 'o' && !OBJECT_PATH.test(value)) throw new MarshalError(`not an object path: ${JSON.stringify(value.slice(0, 200))}`);
  return value;
}

function writeBasic(out: Output, code: string, value: unknown): void {
  switch (code) {
    case 's':
    case 'o':
      out.string(checkedString(code, value));
      return;
    case 'g':
      if (typeof value !== 'string') throw new MarshalError(`expected a signature, got ${typeof value}`);
      out.signature(value);
      return;
    case 'b':
      if (typeof value !== 'boolean') throw new MarshalError(`expected a boolean, got ${typeof value}`);
      out.uint32(value ? 1 : 0);
      return;
    case 'y':
      out.ensure(1);
      out.buffer.writeUInt8(integer(value, 0, 0xff), out.at);
      out.at += 1;
      return;
    case 'n':
      out.align(2);
      out.ensure(2);
      out.buffer.writeInt16LE(integer(value, -0x8000, 0x7fff), out.at);
      out.at += 2;
      return;
    case 'q':
      out.align(2);
      out.ensure(2);
      out.buffer.writeUInt16LE(integer(value, 0, 0xffff), out.at);
      out.at += 2;
      return;
    case 'i':
      out.align(4);
      out.ensure(4);
      out.buffer.writeInt32LE(integer(value, -0x8000_0000, 0x7fff_ffff), out.at);
      out.at += 4;
      return;
    case 'u':
      out.uint32(integer(value, 0, 0xffff_ffff));
      return;
    case 'x':
    case 't': {
      out.align(8);
      out.ensure(8);
      const big = typeof value === 'bigint' ? value : BigInt(integer(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
      if (code === 't') {
        if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new MarshalError(`${big} is out of range for t`);
        out.buffer.writeBigUInt64LE(big, out.at);
      } else {
        if (big < -(2n ** 63n) || big >= 2n ** 63n) throw new MarshalError(`${big} is out of range for x`);
        out.buffer.writeBigInt64LE(big, out.at);
      }
      out.at += 8;
      return;
    }
    case 'd':
      if (typeof value !== 'number') throw new MarshalError(`expected a number, got ${typeof value}`);
      out.align(8);
      out.ensure(8);
      out.buffer.writeDoubleLE(value, out.at);
      out.at += 8;
      return;
    default:
      throw new MarshalError(`type ${code} not sent here`);
  }
}

function integer(value: unknown, min: number, max: number): number {
  const number = typeof value === 'bigint' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new MarshalError(`${String(value)} is not an integer from ${min} to ${max}`);
  }
  return number;
}

function isVariant(value: unknown): value is VariantLike {
  return typeof value === 'object' && value !== null && typeof (value as VariantLike).signature === 'string' && 'value' in value;
}

/** The header flag of a call whose sender wants no reply (nor error): the bus sends none. */
export const NO_REPLY_EXPECTED = 0x1;

/**
 * A method call as it goes on the wire, little-endian: the fixed header (its serial and flags given),
 * the header fields in the order dbus-next writes them (path, interface, member, destination,
 * signature), then the body. Throws MarshalError when a value does not fit its signature.
 */
export function marshalMethodCall(call: MethodCall, serial: number, flags = 0): Buffer {
  const signature = call.signature ?? '';
  const body = call.body ?? [];
  const types = parseSignature(signature);
  if (types.length !== body.length) throw new MarshalError(`${call.member}: ${types.length} values expected, ${body.length} given`);
  const out = new Output(256);
  out.buffer[0] = LITTLE_ENDIAN;
  out.buffer[1] = MESSAGE_TYPE_METHOD_CALL;
  out.buffer[2] = flags;
  out.buffer[3] = PROTOCOL_VERSION;
  out.buffer.writeUInt32LE(serial, 8);
  out.at = 12;
  out.uint32(0);
  const fieldsStart = out.at;
  const field = (code: number, type: 'o' | 's' | 'g', text: string) => {
    out.align(8);
    out.ensure(1);
    out.buffer[out.at] = code;
    out.at += 1;
    out.signature(type);
    if (type === 'g') out.signature(text);
    else out.string(checkedString(type, text));
  };
  field(FIELD_PATH, 'o', call.path);
  if (call.interface) field(FIELD_INTERFACE, 's', call.interface);
  field(FIELD_MEMBER, 's', call.member);
  if (call.destination) field(FIELD_DESTINATION, 's', call.destination);
  if (signature !== '') field(FIELD_SIGNATURE, 'g', signature);
  out.buffer.writeUInt32LE(out.at - fieldsStart, 12);
  out.align(8);
  const bodyStart = out.at;
  types.forEach((type, index) => write(out, type, body[index]));
  out.buffer.writeUInt32LE(out.at - bodyStart, 4);
  return out.buffer.subarray(0, out.at);
}
