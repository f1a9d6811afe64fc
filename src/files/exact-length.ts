/**
 * A body that is exactly `length` bytes, or fails: a file that shrinks while it is read (a task
 * still writing it), or a files service lost mid-file, must not pass for a whole answer, since the
 * HTTP headers (Content-Length, Content-Range) have promised that many bytes already.
 */
import { Transform, type TransformCallback } from 'node:stream';

export function exactLength(length: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const room = length - seen;
      seen += chunk.length;
      // Never more than promised: the rest is dropped (the source was asked for no more).
      callback(null, chunk.length > room ? chunk.subarray(0, Math.max(room, 0)) : chunk);
    },
    flush(callback: TransformCallback) {
      callback(seen >= length ? null : new Error(`the file ended after ${seen} of ${length} bytes`));
    },
  });
}
