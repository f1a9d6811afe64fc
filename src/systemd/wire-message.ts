/**
 * The D-Bus wire format, as far as the runner reads it before dbus-next does (./signal-trimmer.ts):
 * a message's length, type and header fields, and where a value of a given signature ends. From the
 * D-Bus specification, "Message Protocol": a 16-byte fixed header (endianness, type, flags, version,
 * body length, serial, header fields' length), the header fields `a(yv)`, padding to 8, the body.
 * Alignment is counted from the message's start. Anything that does not read as the specification
 * says throws WireFormatError: the caller passes such a message on untouched, for dbus-next to judge.
 */

export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireFormatError';
  }
}

export const FIXED_HEADER_BYTES = 16;
export const MESSAGE_TYPE_METHOD_RETURN = 2;
export const MESSAGE_TYPE_SIGNAL = 4;
const LITTLE_ENDIAN = 0x6c; // 'l'
export const BIG_ENDIAN = 0x42; // 'B'
const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
/** The specification's limit on nested containers (32 arrays and 32 structs). */
const MAX_DEPTH = 64;

/** Header field codes (D-Bus specification, "Header Fields"). */
const FIELD_NAMES: Record<number, HeaderFieldName> = {
  1: 'path',
  2: 'interface',
  3: 'member',
  6: 'destination',
  7: 'sender',
  8: 'signature',
};
type HeaderFieldName = 'path' | 'interface' | 'member' | 'destination' | 'sender' | 'signature';

export interface WireHeader {
  littleEndian: boolean;
  type: number;
  /** Where the body starts, from the message's start. */
  bodyStart: number;
  bodyLength: number;
  fields: Partial<Record<HeaderFieldName, string>>;
}

/** A reader over one message: offsets from the message's start, every read checked against its end. */
export class WireReader {
  constructor(
    readonly bytes: Buffer,
    readonly littleEndian: boolean,
  ) {}

  align(at: number, boundary: number): number {
    const aligned = Math.ceil(at / boundary) * boundary;
    this.need(aligned, 0);
    return aligned;
  }

  uint32(at: number): number {
    this.need(at, 4);
    return this.littleEndian ? this.bytes.readUInt32LE(at) : this.bytes.readUInt32BE(at);
  }

  byte(at: number): number {
    this.need(at, 1);
    return this.bytes[at] as number;
  }

  /** A string or object path at `at` (aligned 4): its text and where it ends. */
  string(at: number): { text: string; end: number } {
    const start = this.align(at, 4);
    const length = this.uint32(start);
    this.need(start + 4, length + 1);
    return { text: this.bytes.toString('utf8', start + 4, start + 4 + length), end: start + 4 + length + 1 };
  }

  /** Where the bytes of a string at `at` (aligned 4) are, without decoding them. */
  stringBytes(at: number): { start: number; length: number; end: number } {
    const lengthAt = this.align(at, 4);
    const length = this.uint32(lengthAt);
    this.need(lengthAt + 4, length + 1);
    return { start: lengthAt + 4, length, end: lengthAt + 4 + length + 1 };
  }

  /** A signature at `at` (one length byte): its text and where it ends. */
  signature(at: number): { text: string; end: number } {
    const length = this.byte(at);
    this.need(at + 1, length + 1);
    return { text: this.bytes.toString('latin1', at + 1, at + 1 + length), end: at + 1 + length + 1 };
  }

  /** Where a value of the single complete type `signature[index…]` starting at `at` ends, and where its type ends in the signature. */
  skip(at: number, signature: string, index = 0, depth = 0): { end: number; next: number } {
    if (depth > MAX_DEPTH) throw new WireFormatError('containers nested too deep');
    const code = signature[index];
    switch (code) {
      case 'y':
        return { end: this.fixed(at, 1), next: index + 1 };
      case 'n':
      case 'q':
        return { end: this.fixed(at, 2), next: index + 1 };
      case 'b':
      case 'i':
      case 'u':
      case 'h':
        return { end: this.fixed(at, 4), next: index + 1 };
      case 'x':
      case 't':
      case 'd':
        return { end: this.fixed(at, 8), next: index + 1 };
      case 's':
      case 'o':
        return { end: this.string(at).end, next: index + 1 };
      case 'g':
        return { end: this.signature(at).end, next: index + 1 };
      case 'v': {
        const inner = this.signature(at);
        const value = this.skip(inner.end, inner.text, 0, depth + 1);
        if (value.next !== inner.text.length) throw new WireFormatError('a variant holds more than one type');
        return { end: value.end, next: index + 1 };
      }
      case 'a': {
        const start = this.align(at, 4);
        const length = this.uint32(start);
        if (length > MAX_MESSAGE_BYTES) throw new WireFormatError('an array longer than a message may be');
        // The padding to the elements' alignment is there even when the array is empty.
        const elements = this.align(start + 4, alignmentOf(signature, index + 1));
        this.need(elements, length);
        return { end: elements + length, next: endOfType(signature, index + 1, depth + 1) };
      }
      case '(':
      case '{': {
        const close = code === '(' ? ')' : '}';
        let end = this.align(at, 8);
        let next = index + 1;
        while (signature[next] !== close) {
          if (next >= signature.length) throw new WireFormatError('an unclosed struct in a signature');
          ({ end, next } = this.skip(end, signature, next, depth + 1));
        }
        return { end, next: next + 1 };
      }
      default:
        throw new WireFormatError(`an unknown type code in a signature: ${JSON.stringify(code)}`);
    }
  }

  /**
   * Whether the values of `signature` from `at` hold a Unix file descriptor (`h`), in variants too:
   * arrays whose elements may hold one are walked element by element, the rest skipped whole.
   */
  holdsDescriptor(at: number, signature: string): boolean {
    let end = at;
    for (let index = 0; index < signature.length;) {
      const value = this.walkForDescriptor(end, signature, index, 0);
      if (value.found) return true;
      ({ end, next: index } = value);
    }
    return false;
  }

  private walkForDescriptor(at: number, signature: string, index: number, depth: number): { end: number; next: number; found: boolean } {
    if (depth > MAX_DEPTH) throw new WireFormatError('containers nested too deep');
    const code = signature[index];
    if (code === 'h') return { ...this.skip(at, signature, index, depth), found: true };
    if (code === 'v') {
      const inner = this.signature(at);
      const value = this.walkForDescriptor(inner.end, inner.text, 0, depth + 1);
      if (value.next !== inner.text.length) throw new WireFormatError('a variant holds more than one type');
      return { end: value.end, next: index + 1, found: value.found };
    }
    const typeEnd = endOfType(signature, index, depth);
    const type = signature.slice(index, typeEnd);
    if (!type.includes('v') && !type.includes('h')) return { ...this.skip(at, signature, index, depth), found: false };
    if (code === 'a') {
      const start = this.align(at, 4);
      const length = this.uint32(start);
      const elements = this.align(start + 4, alignmentOf(signature, index + 1));
      this.need(elements, length);
      for (let element = elements; element < elements + length;) {
        const value = this.walkForDescriptor(element, signature, index + 1, depth + 1);
        if (value.found) return { end: elements + length, next: typeEnd, found: true };
        element = value.end;
      }
      return { end: elements + length, next: typeEnd, found: false };
    }
    // A struct or a dict entry.
    let end = this.align(at, 8);
    for (let next = index + 1; next < typeEnd - 1;) {
      const value = this.walkForDescriptor(end, signature, next, depth + 1);
      if (value.found) return { end: value.end, next: typeEnd, found: true };
      ({ end, next } = value);
    }
    return { end, next: typeEnd, found: false };
  }

  private fixed(at: number, size: number): number {
    const start = this.align(at, size);
    this.need(start, size);
    return start + size;
  }

  private need(at: number, size: number): void {
    if (at + size > this.bytes.length) throw new WireFormatError('a value runs past the end of its message');
  }
}

/**
 * The whole length of the message that starts at `bytes[0]`, once its fixed header is there
 * (null before); throws when the bytes cannot be a message's start.
 */
export function messageLength(bytes: Buffer): number | null {
  if (bytes.length < FIXED_HEADER_BYTES) return null;
  const littleEndian = endiannessOf(bytes);
  const bodyLength = littleEndian ? bytes.readUInt32LE(4) : bytes.readUInt32BE(4);
  const fieldsLength = littleEndian ? bytes.readUInt32LE(12) : bytes.readUInt32BE(12);
  const length = FIXED_HEADER_BYTES + Math.ceil(fieldsLength / 8) * 8 + bodyLength;
  if (length > MAX_MESSAGE_BYTES) throw new WireFormatError(`a message of ${length} bytes`);
  return length;
}

/** The fixed header and the header fields the runner reads, of one whole message. */
export function readHeader(bytes: Buffer): WireHeader {
  const header = readHeaderFields(bytes);
  if (header.bodyStart + header.bodyLength !== bytes.length) throw new WireFormatError('the body is not the rest of the message');
  return header;
}

/** Where a message's body starts (its fixed header and header fields, padded), once the fixed header is in. */
export function headerLength(bytes: Buffer): number {
  const littleEndian = endiannessOf(bytes);
  const fieldsLength = littleEndian ? bytes.readUInt32LE(12) : bytes.readUInt32BE(12);
  return FIXED_HEADER_BYTES + Math.ceil(fieldsLength / 8) * 8;
}

/** Like readHeader, from the message's first headerLength() bytes (the body need not be there). */
export function readHeaderFields(bytes: Buffer): WireHeader {
  const littleEndian = endiannessOf(bytes);
  const reader = new WireReader(bytes, littleEndian);
  const bodyLength = reader.uint32(4);
  const fieldsLength = reader.uint32(12);
  const fieldsEnd = FIXED_HEADER_BYTES + fieldsLength;
  const fields: WireHeader['fields'] = {};
  let at = FIXED_HEADER_BYTES;
  while (at < fieldsEnd) {
    at = reader.align(at, 8);
    const code = reader.byte(at);
    const variant = reader.signature(at + 1);
    const name = FIELD_NAMES[code];
    if (name !== undefined && (variant.text === 's' || variant.text === 'o' || variant.text === 'g')) {
      const value = variant.text === 'g' ? reader.signature(variant.end) : reader.string(variant.end);
      fields[name] = value.text;
      at = value.end;
    } else {
      at = reader.skip(variant.end, variant.text).end;
    }
  }
  if (at !== fieldsEnd) throw new WireFormatError('header fields end elsewhere than their length says');
  const bodyStart = reader.align(fieldsEnd, 8);
  return { littleEndian, type: reader.byte(1), bodyStart, bodyLength, fields };
}

function endiannessOf(bytes: Buffer): boolean {
  const marker = bytes[0];
  if (marker === LITTLE_ENDIAN) return true;
  if (marker === BIG_ENDIAN) return false;
  throw new WireFormatError(`not a D-Bus message: endianness byte ${String(marker)}`);
}

/** The alignment of the type at `signature[index]`. */
function alignmentOf(signature: string, index: number): number {
  switch (signature[index]) {
    case 'y':
    case 'g':
    case 'v':
      return 1;
    case 'n':
    case 'q':
      return 2;
    case 'b':
    case 'i':
    case 'u':
    case 'h':
    case 's':
    case 'o':
    case 'a':
      return 4;
    case 'x':
    case 't':
    case 'd':
    case '(':
    case '{':
      return 8;
    default:
      throw new WireFormatError(`an unknown type code in a signature: ${JSON.stringify(signature[index])}`);
  }
}

/** Where the single complete type starting at `signature[index]` ends. */
function endOfType(signature: string, index: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new WireFormatError('containers nested too deep');
  const code = signature[index];
  if (code === 'a') return endOfType(signature, index + 1, depth + 1);
  if (code === '(' || code === '{') {
    const close = code === '(' ? ')' : '}';
    let next = index + 1;
    while (signature[next] !== close) {
      if (next >= signature.length) throw new WireFormatError('an unclosed struct in a signature');
      next = endOfType(signature, next, depth + 1);
    }
    return next + 1;
  }
  alignmentOf(signature, index); // a known basic type, or it throws
  return index + 1;
}
