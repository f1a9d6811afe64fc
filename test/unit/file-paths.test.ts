/** The pure checks of a task's file path, byte ranges, and the Range header. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRangeHeader } from '../../src/api/range-header.js';
import { resolveRange } from '../../src/files/byte-range.js';
import { splitFilePath } from '../../src/files/file-paths.js';
import { FilesError } from '../../src/files/task-files.js';

const refused = (path: string | string[]) => {
  assert.throws(
    () => splitFilePath(path),
    (error: unknown) => error instanceof FilesError && error.code === 'INVALID_FILE_PATH',
    JSON.stringify(path),
  );
};

describe('a file path in a task directory', () => {
  it('is split into plain names', () => {
    assert.deepEqual(splitFilePath('out/result.txt'), ['out', 'result.txt']);
    assert.deepEqual(splitFilePath(['out', 'a b', '..x', '.hidden']), ['out', 'a b', '..x', '.hidden']);
  });

  it('refuses empty, "." and ".." components, a "/" inside a segment, NUL, and what is too long', () => {
    for (const path of ['', '/etc/passwd', 'a//b', 'a/', '.', '..', '../x', 'out/../../x', 'out/./x', 'a\0b']) refused(path);
    for (const segments of [[], ['..'], ['out', '..', 'x'], ['a/b'], ['..%2f'.replace('%2f', '/')], ['x\0']]) refused(segments);
    refused('x'.repeat(256));
    refused(Array<string>(2100).fill('ab').join('/'));
    assert.equal(splitFilePath('x'.repeat(255))[0]?.length, 255);
  });
});

describe('a byte range against a file size', () => {
  it('resolves start-end, start- and a suffix, clipped to the file', () => {
    assert.deepEqual(resolveRange({ start: 0, end: 3 }, 10), { start: 0, length: 4 });
    assert.deepEqual(resolveRange({ start: 4 }, 10), { start: 4, length: 6 });
    assert.deepEqual(resolveRange({ start: 8, end: 100 }, 10), { start: 8, length: 2 });
    assert.deepEqual(resolveRange({ suffix: 3 }, 10), { start: 7, length: 3 });
    assert.deepEqual(resolveRange({ suffix: 30 }, 10), { start: 0, length: 10 });
  });

  it('is unsatisfiable past the end, backwards, an empty suffix, or any range of an empty file, with the size', () => {
    for (const [range, size] of [
      [{ start: 10 }, 10],
      [{ start: 5, end: 4 }, 10],
      [{ suffix: 0 }, 10],
      [{ suffix: 5 }, 0],
      [{ start: 0 }, 0],
    ] as const) {
      assert.throws(
        () => resolveRange(range, size),
        (error: unknown) => error instanceof FilesError && error.code === 'RANGE_NOT_SATISFIABLE' && error.size === size,
        JSON.stringify(range),
      );
    }
  });
});

describe('the Range header', () => {
  it('reads one byte range', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-99', undefined), { start: 0, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=100-', undefined), { start: 100 });
    assert.deepEqual(parseRangeHeader('bytes=-5', undefined), { suffix: 5 });
    assert.deepEqual(parseRangeHeader('bytes=99999999999999999999-', undefined), { start: Number.MAX_SAFE_INTEGER });
  });

  it('ignores several ranges, other units, malformed values, and any Range with If-Range: the whole file is served', () => {
    for (const header of [undefined, 'bytes=0-1,3-4', 'items=0-1', 'bytes=-', 'bytes=a-b', 'bytes 0-1', 'bytes=1-2-3']) {
      assert.equal(parseRangeHeader(header, undefined), undefined, String(header));
    }
    assert.equal(parseRangeHeader('bytes=0-1', 'Wed, 21 Oct 2015 07:28:00 GMT'), undefined);
  });
});
