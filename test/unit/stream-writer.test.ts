import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'express';
import { GATHER_MAX_CHARS, GATHER_MS, StreamWriter } from '../../src/api/stream-writer.js';

/** A response that records each write (and each flush() compression would add), full when told. */
class RecordingResponse extends EventEmitter {
  writes: string[] = [];
  flushes = 0;
  full = false;
  writableEnded = false;
  write(text: string): boolean {
    this.writes.push(text);
    return !this.full;
  }
  flush(): void {
    this.flushes += 1;
  }
  end(): void {
    this.writableEnded = true;
  }
}

function writerOf(response: RecordingResponse, signal = new AbortController().signal): StreamWriter {
  return new StreamWriter(response as unknown as Response, signal);
}

describe('StreamWriter', () => {
  it('writes text at once when the response has been idle, and flushes it.', async () => {
    const response = new RecordingResponse();
    await writerOf(response).write('one\n');
    assert.deepEqual(response.writes, ['one\n']);
    assert.equal(response.flushes, 1);
  });

  it('gathers text written right after a write and writes it together a moment later.', async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('a\n');
    await writer.write('b\n');
    await writer.write('c\n');
    assert.deepEqual(response.writes, ['a\n']);
    await sleep(GATHER_MS + 20);
    assert.deepEqual(response.writes, ['a\n', 'b\nc\n']);
    // Quiet again: the next text goes at once.
    await writer.write('d\n');
    assert.deepEqual(response.writes, ['a\n', 'b\nc\n', 'd\n']);
  });

  it('writes gathered text without waiting once it is long enough.', async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('first\n');
    const long = 'x'.repeat(GATHER_MAX_CHARS);
    await writer.write('b\n');
    await writer.write(long);
    assert.deepEqual(response.writes, ['first\n', `b\n${long}`]);
  });

  it('writes what has gathered before it ends the response, even a full one.', async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('a\n');
    await writer.write('last\n');
    writer.end();
    assert.deepEqual(response.writes, ['a\n', 'last\n']);
    assert.equal(response.writableEnded, true);
  });

  it('holds its caller while the response is full, until it drains.', async () => {
    const response = new RecordingResponse();
    response.full = true;
    const writer = writerOf(response);
    let released = false;
    const first = writer.write('a\n').then(() => (released = true));
    await sleep(GATHER_MS + 20);
    assert.equal(released, false);
    // More text waits as well, gathered; the caller is held by the same drain.
    let secondReleased = false;
    const second = writer.write('b\n').then(() => (secondReleased = true));
    await sleep(GATHER_MS + 20);
    assert.equal(secondReleased, false);
    assert.deepEqual(response.writes, ['a\n']);
    response.full = false;
    response.emit('drain');
    await Promise.all([first, second]);
    assert.deepEqual(response.writes, ['a\n', 'b\n']);
  });

  it('releases a held caller when the stream is aborted.', async () => {
    const response = new RecordingResponse();
    response.full = true;
    const aborted = new AbortController();
    const writer = writerOf(response, aborted.signal);
    const held = writer.write('a\n');
    aborted.abort();
    await held;
  });
});
