/**
 * Reading a task's working directory as the files service does, on a real file system, against
 * what a hostile task can plant: symbolic links, FIFOs, sockets, hard links to others' files, deep
 * trees, renames while it is read. Root is needed for the ownership checks (npm test runs as root).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { FilesClient } from '../../src/files/client.js';
import { FilesServer } from '../../src/files/server.js';
import { TaskDirectories } from '../../src/files/task-directories.js';
import { FilesError, type FilesErrorCode, type TaskFiles } from '../../src/files/task-files.js';

const isRoot = process.getuid?.() === 0;
const TASK_UID = 54321;
const top = mkdtempSync(join(tmpdir(), 'tessia-files-'));
const privateRoot = join(top, 'private');
const plainRoot = join(top, 'plain');
const outside = join(top, 'outside');
const limits = { maxEntries: 1000, maxDepth: 16 };
after(() => rmSync(top, { recursive: true, force: true }));

/** A task directory of `taskId` (owned by TASK_UID when root), filled by `fill`. */
function taskDirectory(taskId: string, fill: (directory: string) => void, root = privateRoot): string {
  const directory = join(root, taskId);
  mkdirSync(directory, { recursive: true });
  fill(directory);
  if (isRoot) execFileSync('chown', ['-R', '--no-dereference', `${TASK_UID}:${TASK_UID}`, directory]);
  return directory;
}

const failsWith = async (promise: Promise<unknown>, code: FilesErrorCode, detail?: RegExp) => {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FilesError, String(error));
    assert.equal(error.code, code, error.message);
    if (detail) assert.match(error.message, detail);
    return true;
  });
};

mkdirSync(outside, { recursive: true });
writeFileSync(join(outside, 'secret'), 'SECRET of the host\n');
const files = new TaskDirectories([privateRoot, plainRoot]);

describe("a task's directory read in place", () => {
  before(() => {
    taskDirectory('0000000a', (directory) => {
      mkdirSync(join(directory, 'out/deeper'), { recursive: true });
      writeFileSync(join(directory, 'out/result.txt'), 'result line\n');
      writeFileSync(join(directory, 'out/deeper/numbers'), '0123456789');
      writeFileSync(join(directory, 'big'), Buffer.alloc(4096, 'b'));
      symlinkSync(join(outside, 'secret'), join(directory, 'link-to-secret'));
      symlinkSync(outside, join(directory, 'link-to-outside'));
      execFileSync('mkfifo', [join(directory, 'fifo')]);
    });
    if (isRoot) {
      // A file of someone else inside (as a hard link to it would be): never the task's.
      linkSync(join(outside, 'secret'), join(privateRoot, '0000000a', 'hardlink-to-secret'));
    }
  });

  it('lists its regular files and directories, sorted, without links, FIFOs or foreign files', async () => {
    const listing = await files.list('0000000a', limits);
    assert.equal(listing.truncated, false);
    assert.deepEqual(
      listing.files.map((file) => [file.path, file.type]),
      [
        ['big', 'file'],
        ['out', 'directory'],
        ['out/deeper', 'directory'],
        ['out/deeper/numbers', 'file'],
        ['out/result.txt', 'file'],
      ],
    );
    const result = listing.files.find((file) => file.path === 'out/result.txt');
    assert.ok(result);
    assert.equal(result.size, 12);
    assert.ok(!Number.isNaN(Date.parse(result.modified)));
  });

  it('reads a file whole, and a range of it', async () => {
    const whole = await files.read({ taskId: '0000000a', path: 'out/result.txt', maxBytes: 1000 });
    assert.deepEqual([whole.size, whole.start, whole.length, whole.partial], [12, 0, 12, false]);
    assert.equal(await text(whole.body), 'result line\n');
    const part = await files.read({ taskId: '0000000a', path: 'out/deeper/numbers', range: { start: 2, end: 4 }, maxBytes: 1000 });
    assert.deepEqual([part.size, part.start, part.length, part.partial], [10, 2, 3, true]);
    assert.equal(await text(part.body), '234');
  });

  it('refuses symbolic links (last or on the way), FIFOs without waiting, directories, and files of another user', async () => {
    const read = (path: string) => files.read({ taskId: '0000000a', path, maxBytes: 1000 });
    await failsWith(read('link-to-secret'), 'NOT_A_FILE', /link-to-secret is a symbolic link/);
    await failsWith(read('link-to-outside/secret'), 'NOT_A_FILE', /link-to-outside is a symbolic link/);
    await failsWith(read('fifo'), 'NOT_A_FILE', /fifo is a FIFO/);
    await failsWith(read('out'), 'NOT_A_FILE', /out is a directory/);
    await failsWith(read('big/x'), 'NOT_A_FILE', /big is a regular file/);
    await failsWith(read('missing'), 'FILE_NOT_FOUND', /missing: no such file/);
    await failsWith(read('../0000000a/big'), 'INVALID_FILE_PATH');
    if (isRoot) await failsWith(read('hardlink-to-secret'), 'NOT_A_FILE', /another user's/);
  });

  it('refuses a file larger than maxBytes, but serves a range of it that fits; a range past the end is unsatisfiable', async () => {
    await failsWith(files.read({ taskId: '0000000a', path: 'big', maxBytes: 1000 }), 'FILE_TOO_LARGE', /4096 bytes, more than the 1000/);
    const tail = await files.read({ taskId: '0000000a', path: 'big', range: { suffix: 1000 }, maxBytes: 1000 });
    assert.equal((await text(tail.body)).length, 1000);
    await failsWith(files.read({ taskId: '0000000a', path: 'big', range: { start: 4096 }, maxBytes: 1000 }), 'RANGE_NOT_SATISFIABLE');
  });

  it('has no files for a task without a directory, and refuses what is not a task id', async () => {
    assert.deepEqual(await files.list('0000000b', limits), { files: [], truncated: false });
    await failsWith(files.read({ taskId: '0000000b', path: 'x', maxBytes: 10 }), 'FILE_NOT_FOUND', /no working directory/);
    await failsWith(files.list('../../etc', limits), 'INVALID_FILE_PATH');
  });

  it('finds the directory of a fixed-user task in the plain root, but never follows a link there', async () => {
    taskDirectory('0000000c', (directory) => writeFileSync(join(directory, 'plain'), 'plain root'), plainRoot);
    assert.deepEqual(
      (await files.list('0000000c', limits)).files.map((file) => file.path),
      ['plain'],
    );
    mkdirSync(plainRoot, { recursive: true });
    symlinkSync(outside, join(plainRoot, '0000000d'));
    assert.deepEqual(await files.list('0000000d', limits), { files: [], truncated: false });
  });

  it('stops a listing at maxEntries and maxDepth, and says it is truncated', async () => {
    taskDirectory('0000000e', (directory) => {
      for (let i = 0; i < 50; i++) writeFileSync(join(directory, `f${i}`), '');
      mkdirSync(join(directory, 'd1/d2/d3/d4'), { recursive: true });
    });
    const few = await files.list('0000000e', { maxEntries: 10, maxDepth: 16 });
    assert.equal(few.truncated, true);
    assert.ok(few.files.length <= 10 && few.files.length > 0, String(few.files.length));
    const shallow = await files.list('0000000e', { maxEntries: 1000, maxDepth: 1 });
    assert.equal(shallow.truncated, true);
    assert.deepEqual(
      shallow.files.filter((file) => file.type === 'directory').map((file) => file.path),
      ['d1', 'd1/d2'],
    );
  });

  it('fails a read whose file shrinks meanwhile, rather than pass a short body for a whole one', async () => {
    const directory = taskDirectory('0000000f', (directory) => writeFileSync(join(directory, 'growing'), Buffer.alloc(8 << 20, 'g')));
    const download = await files.read({ taskId: '0000000f', path: 'growing', maxBytes: 16 << 20 });
    truncateSync(join(directory, 'growing'), 1000);
    await assert.rejects(text(download.body), /the file ended after \d+ of 8388608 bytes/);
  });

  it('never serves the target of a link swapped in while a file is read (a rename race)', { skip: !isRoot && 'needs root' }, async () => {
    const directory = taskDirectory('00000010', (directory) => writeFileSync(join(directory, 'good'), 'good'));
    // As the task would: x is the good file, then a link to the secret, again and again.
    const swapper = spawn(
      'setpriv',
      [
        `--reuid=${TASK_UID}`,
        `--regid=${TASK_UID}`,
        '--clear-groups',
        'sh',
        '-c',
        'while :; do ln -f good x; ln -sfn "$1" y; mv -Tf y x; done',
        'sh',
        join(outside, 'secret'),
      ],
      { cwd: directory, stdio: 'ignore' },
    );
    try {
      const seen = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const outcome = await files.read({ taskId: '00000010', path: 'x', maxBytes: 100 }).then(
          async (download) => `content:${await text(download.body)}`,
          (error: unknown) => (error instanceof FilesError ? error.code : String(error)),
        );
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
      }
      assert.ok(!seen.has('content:SECRET of the host\n'), JSON.stringify([...seen]));
      assert.deepEqual(
        [...seen.keys()].filter((outcome) => !['content:good', 'NOT_A_FILE', 'FILE_NOT_FOUND'].includes(outcome)),
        [],
      );
      assert.ok((seen.get('content:good') ?? 0) > 0 && (seen.get('NOT_A_FILE') ?? 0) > 0, JSON.stringify([...seen]));
    } finally {
      swapper.kill('SIGKILL');
    }
  });
});

describe("removing a task's directory", () => {
  it('removes the tree and the link DynamicUser leaves, and nothing a link in it points to', async () => {
    taskDirectory('00000020', (directory) => {
      let deep = directory;
      for (let i = 0; i < 100; i++) deep = join(deep, `d${i}`);
      mkdirSync(deep, { recursive: true });
      writeFileSync(join(deep, 'bottom'), 'x');
      symlinkSync(outside, join(directory, 'link-to-outside'));
      execFileSync('mkfifo', [join(directory, 'fifo')]);
      mkdirSync(join(directory, 'locked'));
      writeFileSync(join(directory, 'locked/file'), 'x');
      execFileSync('chmod', ['000', join(directory, 'locked')]);
    });
    mkdirSync(plainRoot, { recursive: true });
    symlinkSync('../private/00000020', join(plainRoot, '00000020'));
    assert.equal(await files.remove('00000020'), true);
    assert.ok(!existsSync(join(privateRoot, '00000020')));
    assert.throws(() => readFileSync(join(plainRoot, '00000020')), /ENOENT/);
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'SECRET of the host\n', 'the link was removed, not followed');
    assert.equal(await files.remove('00000020'), false);
  });
});

describe('the files service and its client', () => {
  let server: Server;
  const socketPath = join(top, 'files.sock');
  const client = new FilesClient(socketPath);
  before(async () => {
    taskDirectory('00000030', (directory) => {
      writeFileSync(join(directory, 'data'), 'abcdefghij');
      symlinkSync(join(outside, 'secret'), join(directory, 'link'));
    });
    server = createServer();
    new FilesServer(files, pino({ level: 'silent' })).serve(server);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  after(() => {
    client.close();
    server.close();
  });

  const through: [string, () => TaskFiles][] = [['the socket', () => client]];
  for (const [how, reader] of through) {
    it(`lists, reads a range, and passes refusals on with their codes, through ${how}`, async () => {
      assert.deepEqual(
        (await reader().list('00000030', limits)).files.map((file) => file.path),
        ['data'],
      );
      const part = await reader().read({ taskId: '00000030', path: 'data', range: { start: 3 }, maxBytes: 100 });
      assert.deepEqual([part.size, part.start, part.length, part.partial], [10, 3, 7, true]);
      assert.equal(await text(part.body), 'defghij');
      await failsWith(reader().read({ taskId: '00000030', path: 'link', maxBytes: 100 }), 'NOT_A_FILE', /symbolic link/);
      await assert.rejects(
        reader().read({ taskId: '00000030', path: 'data', range: { start: 20 }, maxBytes: 100 }),
        (error: unknown) => error instanceof FilesError && error.code === 'RANGE_NOT_SATISFIABLE' && error.size === 10,
      );
      await failsWith(reader().read({ taskId: '00000030', path: 'a/../data', maxBytes: 100 }), 'INVALID_FILE_PATH');
    });
  }

  it('refuses a request beyond its ceilings or not of its schema, opening nothing', async () => {
    const { createConnection } = await import('node:net');
    const ask = (line: string) =>
      new Promise<string>((resolve) => {
        const socket = createConnection(socketPath, () => socket.end(`${line}\n`));
        let answer = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
        socket.on('close', () => resolve(answer));
      });
    for (const line of [
      JSON.stringify({ op: 'list', taskId: '00000030', maxEntries: 10_000_000, maxDepth: 1 }),
      JSON.stringify({ op: 'read', taskId: '../../etc', path: 'shadow', maxBytes: 10 }),
      JSON.stringify({ op: 'chmod', taskId: '00000030' }),
      'not json',
    ]) {
      const answer = await ask(line);
      if (line === 'not json') assert.equal(answer, '', 'not a request: the connection is closed');
      else assert.equal(JSON.parse(answer).error?.code, 'INVALID_REQUEST', answer);
    }
  });

  it('is FILES_UNAVAILABLE when nothing listens', async () => {
    await failsWith(new FilesClient(join(top, 'nobody.sock')).list('00000030', limits), 'FILES_UNAVAILABLE', /ENOENT/);
  });
});
