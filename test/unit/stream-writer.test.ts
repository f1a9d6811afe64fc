import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GATHER_MAX_LENGTH, StreamWriter } from '../../src/api/stream-writer.js';

/** Long enough that two writes one after the other fall within it on a busy machine. */
const TEST_GATHER_MS = 300;
const LIMIT = { timeout: 5_000 };

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
  return new StreamWriter(response, signal, { gatherMs: TEST_GATHER_MS });
}

/** Whether `promise` has settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms, false)]);
}

describe('StreamWriter', () => {
  it('writes text at once when the response has been quiet, and flushes it.', LIMIT, async () => {
    const response = new RecordingResponse();
    await writerOf(response).write('one\n');
    assert.deepEqual(response.writes, ['one\n']);
    assert.equal(response.flushes, 1);
  });

  it('gathers text written right after a write and writes it together a moment later.', LIMIT, async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('a\n');
    await writer.write('b\n');
    await writer.write('c\n');
    assert.deepEqual(response.writes, ['a\n']);
    assert.equal(writer.hasUnsent, true);
    await sleep(TEST_GATHER_MS * 2 + 50);
    assert.deepEqual(response.writes, ['a\n', 'b\nc\n']);
    assert.equal(writer.hasUnsent, false);
    // Quiet again for the gather time (counted from when the gathered text went out, late or not):
    // the next text goes at once.
    while (!writer.isQuietFor(TEST_GATHER_MS)) await sleep(20);
    await writer.write('d\n');
    assert.deepEqual(response.writes, ['a\n', 'b\nc\n', 'd\n']);
  });

  it('writes gathered text without waiting once it is long enough together.', LIMIT, async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('first\n');
    const half = 'x'.repeat(GATHER_MAX_LENGTH / 2);
    await writer.write(half);
    await writer.write(half.slice(1));
    assert.deepEqual(response.writes, ['first\n']);
    await writer.write('y');
    assert.deepEqual(response.writes, ['first\n', `${half}${half.slice(1)}y`]);
  });

  it('writes what has gathered and the last text, in order, before it ends the response.', LIMIT, async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    await writer.write('a\n');
    await writer.write('b\n');
    writer.end('last\n');
    assert.deepEqual(response.writes, ['a\n', 'b\nlast\n']);
    assert.equal(response.writableEnded, true);
  });

  it('ends a full response with what was gathered while it drained.', LIMIT, async () => {
    const response = new RecordingResponse();
    response.full = true;
    const writer = writerOf(response);
    void writer.write('a\n');
    void writer.write('b\n');
    writer.end('last\n');
    assert.deepEqual(response.writes, ['a\n', 'b\nlast\n']);
    assert.equal(response.writableEnded, true);
  });

  it('holds its caller while the response is full, writes nothing more, and goes on once it drains.', LIMIT, async () => {
    const response = new RecordingResponse();
    response.full = true;
    const writer = writerOf(response);
    const first = writer.write('a\n');
    assert.equal(await settlesWithin(first, TEST_GATHER_MS * 2), false);
    // More text waits as well, gathered; the caller is held by the same drain.
    const second = writer.write('b\n');
    assert.equal(await settlesWithin(second, TEST_GATHER_MS * 2), false);
    assert.deepEqual(response.writes, ['a\n']);
    assert.equal(writer.hasUnsent, true);
    response.full = false;
    response.emit('drain');
    assert.equal(await settlesWithin(Promise.all([first, second]), 1000), true);
    assert.deepEqual(response.writes, ['a\n', 'b\n']);
  });

  it('releases a held caller when the stream is aborted, writes nothing more, and leaves the rest to end().', LIMIT, async () => {
    const response = new RecordingResponse();
    response.full = true;
    const aborted = new AbortController();
    const writer = writerOf(response, aborted.signal);
    const held = writer.write('a\n');
    void writer.write('b\n');
    aborted.abort();
    assert.equal(await settlesWithin(held, 1000), true);
    await sleep(TEST_GATHER_MS * 2);
    assert.deepEqual(response.writes, ['a\n']);
    writer.end('shutdown\n');
    assert.deepEqual(response.writes, ['a\n', 'b\nshutdown\n']);
  });

  it('ignores text written after the end.', LIMIT, async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    writer.end('last\n');
    await writer.write('late\n');
    writer.end('again\n');
    await sleep(TEST_GATHER_MS * 2);
    assert.deepEqual(response.writes, ['last\n']);
  });

  it('is quiet for a heartbeat only once nothing went out for that long and nothing waits.', LIMIT, async () => {
    const response = new RecordingResponse();
    const writer = writerOf(response);
    assert.equal(writer.isQuietFor(200), false, 'right after the headers');
    await sleep(250);
    assert.equal(writer.isQuietFor(200), true);
    await writer.write('a\n');
    assert.equal(writer.isQuietFor(200), false, 'right after a write');
    await writer.write('b\n');
    await sleep(250);
    // 'b' went out at the gather time (300 ms after 'a'): not quiet for 200 ms yet.
    assert.equal(writer.isQuietFor(200), false, 'while text is gathered or just went out');
    // The response fills with 'b' (written at the gather time), and 'c' waits for it to drain.
    response.full = true;
    await sleep(300);
    void writer.write('c\n');
    await sleep(TEST_GATHER_MS + 250);
    assert.equal(writer.isQuietFor(200), false, 'while the client has not taken what was sent');
    response.full = false;
    response.emit('drain');
    await sleep(250);
    assert.equal(writer.isQuietFor(200), true);
  });

  it('listens for drain once for the stream, however often the response fills.', LIMIT, async () => {
    // As compression() does: 'drain' listeners go to its zlib stream, and removeListener does not reach them.
    class CompressedResponse extends RecordingResponse {
      override removeListener(): this {
        return this;
      }
    }
    const response = new CompressedResponse();
    response.full = true;
    const writer = new StreamWriter(response, new AbortController().signal, { gatherMs: 0 });
    for (let i = 0; i < 20; i++) {
      const held = writer.write(`${i}\n`);
      assert.equal(writer.hasUnsent, true);
      response.emit('drain');
      await held;
    }
    assert.equal(response.writes.length, 20);
    assert.equal(response.listenerCount('drain'), 1);
  });
});
