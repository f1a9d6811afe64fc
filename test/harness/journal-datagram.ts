/** The inverse of journald's native protocol, written from journald's description of it: a datagram's fields. */
import assert from 'node:assert/strict';

export function parseDatagram(datagram: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < datagram.length) {
    const newline = datagram.indexOf(0x0a, at);
    assert.ok(newline >= 0, 'every field ends with a newline');
    const line = datagram.subarray(at, newline).toString('utf8');
    const equals = line.indexOf('=');
    if (equals >= 0) {
      fields[line.slice(0, equals)] = line.slice(equals + 1);
      at = newline + 1;
      continue;
    }
    const length = Number(datagram.readBigUInt64LE(newline + 1));
    const start = newline + 9;
    fields[line] = datagram.subarray(start, start + length).toString('utf8');
    assert.equal(datagram[start + length], 0x0a, 'a binary value ends with a newline');
    at = start + length + 1;
  }
  return fields;
}
