/**
 * D-Bus messages as bytes, written for tests from the specification ("Message Protocol",
 * "Marshaling"), apart from the runner's own reader (src/systemd/wire-message.ts). Values by
 * signature: y n q i u h → number, b → boolean, x t → bigint, d → number, s o g → string,
 * v → [signature, value], a → array (a dict: an array of [key, value]), ( ) { } → array of fields.
 */

export interface WireMessageSpec {
  type: 1 | 2 | 3 | 4;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  destination?: string;
  sender?: string;
  replySerial?: number;
  /** The body's signature and its values, one each. */
  body?: [string, unknown[]];
  littleEndian?: boolean;
  /** Header fields beyond those above: [code, [signature, value]]. */
  extraFields?: [number, [string, unknown]][];
}

class Writer {
  private bytes = Buffer.alloc(256);
  length = 0;

  constructor(readonly littleEndian: boolean) {}

  result(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  align(boundary: number): void {
    while (this.length % boundary !== 0) this.raw(Buffer.of(0));
  }

  raw(bytes: Buffer): void {
    while (this.length + bytes.length > this.bytes.length) {
      const bigger = Buffer.alloc(this.bytes.length * 2);
      this.bytes.copy(bigger);
      this.bytes = bigger;
    }
    bytes.copy(this.bytes, this.length);
    this.length += bytes.length;
  }

  uint32At(at: number, value: number): void {
    if (this.littleEndian) this.bytes.writeUInt32LE(value, at);
    else this.bytes.writeUInt32BE(value, at);
  }

  number(size: 1 | 2 | 4 | 8, value: number | bigint, kind: 'u' | 'i' | 'd'): void {
    this.align(size);
    const out = Buffer.alloc(size);
    const n = Number(value);
    if (size === 1) out.writeUInt8(n);
    else if (size === 8 && kind === 'd')
      this.either(
        () => out.writeDoubleLE(n),
        () => out.writeDoubleBE(n),
      );
    else if (size === 8 && kind === 'i')
      this.either(
        () => out.writeBigInt64LE(BigInt(value)),
        () => out.writeBigInt64BE(BigInt(value)),
      );
    else if (size === 8)
      this.either(
        () => out.writeBigUInt64LE(BigInt(value)),
        () => out.writeBigUInt64BE(BigInt(value)),
      );
    else if (kind === 'i')
      this.either(
        () => out.writeIntLE(n, 0, size),
        () => out.writeIntBE(n, 0, size),
      );
    else
      this.either(
        () => out.writeUIntLE(n, 0, size),
        () => out.writeUIntBE(n, 0, size),
      );
    this.raw(out);
  }

  private either(littleEndian: () => void, bigEndian: () => void): void {
    if (this.littleEndian) littleEndian();
    else bigEndian();
  }

  string(value: string): void {
    const text = Buffer.from(value, 'utf8');
    this.number(4, text.length, 'u');
    this.raw(Buffer.concat([text, Buffer.of(0)]));
  }

  signature(value: string): void {
    this.raw(Buffer.concat([Buffer.of(value.length), Buffer.from(value, 'latin1'), Buffer.of(0)]));
  }

  /** Writes one value of the complete type at `signature[index]`; returns the index after that type. */
  value(signature: string, index: number, value: unknown): number {
    const code = signature[index];
    const fixed = FIXED[code as string];
    if (fixed) {
      const [size, kind] = fixed;
      this.number(size, code === 'b' ? (value ? 1 : 0) : (value as number | bigint), kind);
      return index + 1;
    }
    switch (code) {
      case 's':
      case 'o':
        this.string(value as string);
        return index + 1;
      case 'g':
        this.signature(value as string);
        return index + 1;
      case 'v': {
        const [inner, innerValue] = value as [string, unknown];
        this.signature(inner);
        this.value(inner, 0, innerValue);
        return index + 1;
      }
      case 'a': {
        this.align(4);
        const lengthAt = this.length;
        this.number(4, 0, 'u');
        this.align(ALIGNMENT[signature[index + 1] as string] ?? 1);
        const start = this.length;
        let next = index + 1;
        const elements = value as unknown[];
        if (elements.length === 0) next = skipType(signature, index + 1);
        for (const element of elements) next = this.value(signature, index + 1, element);
        this.uint32At(lengthAt, this.length - start);
        return next;
      }
      case '(':
      case '{': {
        this.align(8);
        let next = index + 1;
        for (const field of value as unknown[]) next = this.value(signature, next, field);
        return next + 1;
      }
      default:
        throw new Error(`cannot write type ${String(code)}`);
    }
  }
}

/** Fixed-size types: their size and how their bytes read (unsigned, signed, IEEE double); a boolean is a uint32. */
const FIXED: Record<string, [1 | 2 | 4 | 8, 'u' | 'i' | 'd']> = {
  y: [1, 'u'],
  b: [4, 'u'],
  n: [2, 'i'],
  q: [2, 'u'],
  i: [4, 'i'],
  u: [4, 'u'],
  h: [4, 'u'],
  x: [8, 'i'],
  t: [8, 'u'],
  d: [8, 'd'],
};

const ALIGNMENT: Record<string, number> = {
  y: 1,
  g: 1,
  v: 1,
  n: 2,
  q: 2,
  b: 4,
  i: 4,
  u: 4,
  h: 4,
  s: 4,
  o: 4,
  a: 4,
  x: 8,
  t: 8,
  d: 8,
  '(': 8,
  '{': 8,
};

function skipType(signature: string, index: number): number {
  const code = signature[index];
  if (code === 'a') return skipType(signature, index + 1);
  if (code === '(' || code === '{') {
    let next = index + 1;
    while (signature[next] !== (code === '(' ? ')' : '}')) next = skipType(signature, next);
    return next + 1;
  }
  return index + 1;
}

/** One whole message. */
export function marshalMessage(spec: WireMessageSpec): Buffer {
  const littleEndian = spec.littleEndian ?? true;
  const body = new Writer(littleEndian);
  const [signature, values] = spec.body ?? ['', []];
  let index = 0;
  for (const value of values) index = body.value(signature, index, value);
  const fields: [number, [string, unknown]][] = [];
  if (spec.path !== undefined) fields.push([1, ['o', spec.path]]);
  if (spec.interface !== undefined) fields.push([2, ['s', spec.interface]]);
  if (spec.member !== undefined) fields.push([3, ['s', spec.member]]);
  if (spec.replySerial !== undefined) fields.push([5, ['u', spec.replySerial]]);
  if (spec.destination !== undefined) fields.push([6, ['s', spec.destination]]);
  if (spec.sender !== undefined) fields.push([7, ['s', spec.sender]]);
  if (signature !== '') fields.push([8, ['g', signature]]);
  fields.push(...(spec.extraFields ?? []));
  const message = new Writer(littleEndian);
  message.raw(Buffer.of(littleEndian ? 0x6c : 0x42, spec.type, 0, 1));
  message.number(4, body.length, 'u');
  message.number(4, spec.serial, 'u');
  message.value('a(yv)', 0, fields);
  message.align(8);
  message.raw(body.result());
  return message.result();
}
