import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageLength, readHeader, WireFormatError, WireReader } from '../../src/systemd/wire-message.js';
import { marshalMessage } from '../harness/wire-marshal.js';

describe('the D-Bus wire format', () => {
  it("reads a message's length, type and header fields, skipping fields it does not know", () => {
    for (const littleEndian of [true, false]) {
      const message = marshalMessage({
        type: 4,
        serial: 5,
        path: '/org/freedesktop/systemd1/unit/x',
        interface: 'org.example.I',
        member: 'Changed',
        destination: ':1.4',
        sender: ':1.1',
        littleEndian,
        body: ['sv', ['text', ['ay', [1, 2, 3]]]],
        extraFields: [
          [9, ['u', 0]],
          [42, ['a(st)', [['odd', 7n]]]],
        ],
      });
      assert.equal(messageLength(message), message.length);
      assert.equal(messageLength(Buffer.concat([message, Buffer.alloc(3)])), message.length, 'the next message is not its own');
      const header = readHeader(message);
      assert.equal(header.type, 4);
      assert.equal(header.littleEndian, littleEndian);
      assert.deepEqual(header.fields, {
        path: '/org/freedesktop/systemd1/unit/x',
        interface: 'org.example.I',
        member: 'Changed',
        destination: ':1.4',
        sender: ':1.1',
        signature: 'sv',
      });
      assert.equal(header.bodyStart % 8, 0);
      assert.equal(header.bodyStart + header.bodyLength, message.length);
      const reader = new WireReader(message, littleEndian);
      const text = reader.string(header.bodyStart);
      assert.equal(text.text, 'text');
      assert.equal(reader.skip(text.end, 'v').end, message.length);
    }
  });

  it('waits for a whole fixed header, and refuses what cannot start a message', () => {
    assert.equal(messageLength(Buffer.from('l\u0004\u0000\u0001')), null);
    assert.throws(() => messageLength(Buffer.alloc(16, 0x41)), WireFormatError);
    const huge = marshalMessage({ type: 4, serial: 1 });
    huge.writeUInt32LE(200 * 1024 * 1024, 4);
    assert.throws(() => messageLength(huge), /a message of \d+ bytes/);
  });

  it('refuses values and signatures the specification does not allow', () => {
    const bytes = Buffer.alloc(64);
    const reader = new WireReader(bytes, true);
    assert.throws(() => reader.skip(0, 'z'), /unknown type code/);
    assert.throws(() => reader.skip(0, `${'a'.repeat(70)}y`), /nested too deep/);
    assert.throws(() => reader.skip(0, '(yy'), /unclosed struct/);
    assert.throws(() => reader.skip(0, 'az'), /unknown type code/);
    const variant = Buffer.from([2, 0x79, 0x79, 0, 1, 2]); // a variant whose signature holds two types
    assert.throws(() => new WireReader(variant, true).skip(0, 'v'), /more than one type/);
    const longString = Buffer.alloc(8);
    longString.writeUInt32LE(100, 0);
    assert.throws(() => new WireReader(longString, true).skip(0, 's'), /past the end/);
  });

  it('skips every basic and container type to where it ends', () => {
    const message = marshalMessage({
      type: 4,
      serial: 2,
      body: ['ybnqiuxtdhsogva{sv}(yt)', [1, true, -2, 3, -4, 5, -6n, 7n, 8.5, 0, 's', '/o', 'ay', ['t', 9n], [['k', ['y', 1]]], [2, 10n]]],
    });
    const header = readHeader(message);
    const reader = new WireReader(message, true);
    let at = header.bodyStart;
    let next = 0;
    const signature = 'ybnqiuxtdhsogva{sv}(yt)';
    while (next < signature.length) ({ end: at, next } = reader.skip(at, signature, next));
    assert.equal(at, message.length);
  });
});
