/**
 * A task's working directory over the API: listed and downloaded (whole, a range), also after the
 * task has ended and its unit is gone; and what a hostile task plants there — links to the host's
 * secrets and to the runner's store, a FIFO, hard links, many files, a deep tree — never leads the
 * reader out of the task's own regular files. The runner here is root and reads in its process; the
 * package suite reads through the files service.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { describe, test } from 'node:test';
import { eventually } from '../../src/embedded/eventually.js';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { runnerSuite } from '../harness/suite.js';
import { TEST_MACHINES } from '../harness/test-runner.js';
import { journalOf, waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';

const NUMBERS = `${Array.from({ length: 50_000 }, (_, index) => index + 1).join('\n')}\n`;

const FILE_MACHINES = {
  // Leaves results behind, as tessia's machines did, and ends.
  'writes-files': {
    exec: [
      '/bin/sh',
      '-c',
      'mkdir -p out/empty-dir && printf "result line\\n" > out/result.txt && seq 1 50000 > out/numbers.txt && echo written',
    ],
  },
  // Plants what could lead a reader astray; the path of the runner's store is its parameters (a JSON string).
  'plants-traps': {
    exec: [
      '/bin/sh',
      '-c',
      [
        "store=$(tr -d '\"')",
        'ln -s /etc/shadow shadow',
        'ln -s "$store" store',
        'ln -s / root-of-host',
        'mkfifo fifo',
        // Hard links to files the task cannot write: refused by the kernel (protected_hardlinks, and
        // the read-only /etc is another mount); one to its own file: allowed, and served.
        'ln /etc/passwd passwd 2>/dev/null && echo hardlink-etc:allowed || echo hardlink-etc:denied',
        'echo own > own && ln own own-link && echo hardlink-own:allowed || echo hardlink-own:denied',
        'mkdir locked && echo inside > locked/file && chmod 000 locked',
        'echo planted',
      ].join('; '),
    ],
  },
  'many-and-deep': {
    exec: ['/bin/sh', '-c', 'mkdir many && cd many && seq 1 700 | xargs touch && cd .. && mkdir -p $(seq -s / 1 30) && echo built'],
  },
};

/** The installed command line, as a user runs it. */
function cli(url: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_DIR, 'dist/cli/main.js'), 'task', ...args, '--url', url],
      { encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe("a task's files", () => {
  const suite = runnerSuite({
    machines: { ...TEST_MACHINES, ...FILE_MACHINES },
    limits: { maxFileEntries: 500, maxFileDepth: 16, maxFileBytes: 100_000 },
  });
  /** A GET with the path sent as it is (fetch would resolve "..", and %2e%2e with it). */
  const raw = (path: string, headers: Record<string, string> = {}) =>
    new Promise<RawReply>((resolve, reject) => {
      const url = new URL(suite.runner.baseUrl);
      get({ host: url.hostname, port: url.port, path, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      }).on('error', reject);
    });
  const json = (reply: RawReply) => JSON.parse(reply.body.toString('utf8'));
  const ended = async (machine: string, parameters: unknown, line: string) => {
    const task = await suite.start(machine, parameters);
    await waitForState(suite.api, task.taskId, ['exited']);
    await waitForJournalLine(suite.runner, task.taskId, line);
    await waitForCollected(suite.runner, task.unit);
    return task.taskId;
  };

  test('lists what the task left and downloads a file whole and in ranges, after it ended and its unit is gone', async () => {
    const taskId = await ended('writes-files', null, 'written');
    const listing = await suite.api.get(`/v1/tasks/${taskId}/files`);
    assert.equal(listing.status, 200, JSON.stringify(listing.body));
    assert.equal(listing.body.truncated, false);
    assert.deepEqual(
      listing.body.files.map((file: { path: string; type: string }) => [file.path, file.type]),
      [
        ['out', 'directory'],
        ['out/empty-dir', 'directory'],
        ['out/numbers.txt', 'file'],
        ['out/result.txt', 'file'],
      ],
    );
    const result = listing.body.files.find((file: { path: string }) => file.path === 'out/result.txt');
    assert.equal(result.size, 12);
    assert.ok(Math.abs(Date.parse(result.modified) - Date.now()) < 120_000, result.modified);

    const whole = await raw(`/v1/tasks/${taskId}/files/out/result.txt`);
    assert.equal(whole.status, 200);
    assert.equal(whole.body.toString(), 'result line\n');
    assert.equal(whole.headers['content-type'], 'application/octet-stream');
    assert.match(String(whole.headers['content-disposition']), /^attachment; filename="?result\.txt"?$/);
    assert.equal(whole.headers['x-content-type-options'], 'nosniff');
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(whole.headers['content-length'], '12');

    const size = Buffer.byteLength(NUMBERS);
    const head = await raw(`/v1/tasks/${taskId}/files/out/numbers.txt`, { Range: 'bytes=0-9' });
    assert.equal(head.status, 206);
    assert.equal(head.headers['content-range'], `bytes 0-9/${size}`);
    assert.equal(head.body.toString(), NUMBERS.slice(0, 10));
    const tail = await raw(`/v1/tasks/${taskId}/files/out/numbers.txt`, { Range: 'bytes=-12' });
    assert.equal(tail.status, 206);
    assert.equal(tail.body.toString(), NUMBERS.slice(-12));
    // 100 000 bytes at once at most (limits.maxFileBytes): the whole file is too large, a range of it is not.
    const tooLarge = await raw(`/v1/tasks/${taskId}/files/out/numbers.txt`);
    assert.equal(tooLarge.status, 413);
    assert.equal(json(tooLarge).code, 'FILE_TOO_LARGE');
    assert.match(json(tooLarge).detail, /288894 bytes, more than the 100000 .*Range/);
    const middle = await raw(`/v1/tasks/${taskId}/files/out/numbers.txt`, { Range: 'bytes=100000-199999' });
    assert.equal(middle.status, 206);
    assert.equal(
      createHash('sha256').update(middle.body).digest('hex'),
      createHash('sha256').update(Buffer.from(NUMBERS).subarray(100_000, 200_000)).digest('hex'),
    );
    const beyond = await raw(`/v1/tasks/${taskId}/files/out/numbers.txt`, { Range: `bytes=${size}-` });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${size}`);
    assert.equal(json(beyond).code, 'RANGE_NOT_SATISFIABLE');

    const directory = await raw(`/v1/tasks/${taskId}/files/out/empty-dir`);
    assert.equal(directory.status, 400);
    assert.equal(json(directory).code, 'NOT_A_FILE');
    const missing = await raw(`/v1/tasks/${taskId}/files/out/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(json(missing).code, 'FILE_NOT_FOUND');
  });

  test('the CLI lists the files and writes one to a new file, exit 3 for a missing one', async () => {
    const taskId = await ended('writes-files', null, 'written');
    const listed = await cli(suite.runner.baseUrl, 'files', taskId);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      listed.stdout
        .trim()
        .split('\n')
        .map((line) => [line.split('\t')[0], line.split('\t').at(-1)]),
      [
        ['d', 'out'],
        ['d', 'out/empty-dir'],
        ['-', 'out/numbers.txt'],
        ['-', 'out/result.txt'],
      ],
    );
    const output = join(mkdtempSync(join(tmpdir(), 'tessia-get-file-')), 'result.txt');
    const fetched = await cli(suite.runner.baseUrl, 'get-file', taskId, 'out/result.txt', '--output', output);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(readFileSync(output, 'utf8'), 'result line\n');
    const again = await cli(suite.runner.baseUrl, 'get-file', taskId, 'out/result.txt', '--output', output);
    assert.notEqual(again.code, 0, 'an existing file is not overwritten');
    const missing = await cli(suite.runner.baseUrl, 'get-file', taskId, 'out/none');
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /404: out\/none: no such file/);
  });

  test('an unknown task is 404 TASK_NOT_FOUND; a task that left nothing lists nothing', async () => {
    for (const path of ['/v1/tasks/0000dead/files', '/v1/tasks/0000dead/files/x', '/v1/tasks/..%2F..%2Fetc/files/passwd']) {
      const reply = await raw(path);
      assert.equal(reply.status, 404, path);
      assert.equal(json(reply).code, 'TASK_NOT_FOUND', path);
    }
    const taskId = await ended('echo', ['echo nothing written'], 'nothing written');
    assert.deepEqual((await suite.api.get(`/v1/tasks/${taskId}/files`)).body, { files: [], truncated: false });
  });

  test("links to /etc/shadow, to the runner store and to /, a FIFO, and a locked directory lead nowhere; hard links to others' files cannot be made", async () => {
    const store = `${suite.runner.stateDir}/tasks.sqlite3`;
    const taskId = await ended('plants-traps', store, 'planted');
    const said = await journalOf(suite.runner, taskId);
    assert.ok(said.includes('hardlink-etc:denied'), said.join('\n'));
    assert.ok(said.includes('hardlink-own:allowed'), said.join('\n'));

    const listed = (await suite.api.get(`/v1/tasks/${taskId}/files`)).body.files.map((file: { path: string }) => file.path);
    assert.deepEqual(listed, ['locked', 'locked/file', 'own', 'own-link'], 'no link, no FIFO');
    for (const [path, detail] of [
      ['shadow', /shadow is a symbolic link/],
      ['store', /store is a symbolic link/],
      ['root-of-host/etc/shadow', /root-of-host is a symbolic link/],
      ['fifo', /fifo is a FIFO/],
    ] as const) {
      const began = Date.now();
      const reply = await raw(`/v1/tasks/${taskId}/files/${path}`);
      assert.equal(reply.status, 400, `${path}: ${reply.body.toString()}`);
      assert.equal(json(reply).code, 'NOT_A_FILE');
      assert.match(json(reply).detail, detail);
      assert.ok(Date.now() - began < 5000, `${path} answered at once`);
    }
    assert.equal((await raw(`/v1/tasks/${taskId}/files/own-link`)).body.toString(), 'own\n');
    assert.equal(
      (await raw(`/v1/tasks/${taskId}/files/locked/file`)).body.toString(),
      'inside\n',
      'a mode the task chose does not hide its file',
    );
    // Those targets exist: the refusals above are the reader's, not missing files.
    assert.equal((await suite.runner.systemd.run(['test', '-s', store])).code, 0);
  });

  test('"..", "." and empty segments, encoded or not, are refused before anything is opened; an encoded slash separates like a slash', async () => {
    const taskId = await ended('writes-files', null, 'written');
    for (const path of [
      `/v1/tasks/${taskId}/files/../../../../etc/passwd`,
      `/v1/tasks/${taskId}/files/out/../../${taskId}/out/result.txt`,
      `/v1/tasks/${taskId}/files/%2e%2e/%2e%2e/etc/passwd`,
      `/v1/tasks/${taskId}/files/out/%2E%2E/out/result.txt`,
      `/v1/tasks/${taskId}/files/..%2F..%2Fetc%2Fpasswd`,
      `/v1/tasks/${taskId}/files/./out/result.txt`,
      `/v1/tasks/${taskId}/files/out//result.txt`,
      `/v1/tasks/${taskId}/files/out/result.txt%00`,
    ]) {
      const reply = await raw(path);
      assert.equal(reply.status, 400, `${path}: ${reply.status} ${reply.body.toString()}`);
      assert.equal(json(reply).code, 'INVALID_FILE_PATH', path);
    }
    // What a client that encodes the path whole sends (generated clients do).
    const encoded = await raw(`/v1/tasks/${taskId}/files/out%2Fresult.txt`);
    assert.equal(encoded.status, 200, encoded.body.toString());
    const plain = await raw(`/v1/tasks/${taskId}/files/out/result.txt`);
    assert.deepEqual(encoded.body, plain.body);
  });

  test('many files and a deep tree: the listing stops at limits.maxFileEntries and maxFileDepth and says truncated', async () => {
    const taskId = await ended('many-and-deep', null, 'built');
    const listing = await suite.api.get(`/v1/tasks/${taskId}/files`);
    assert.equal(listing.status, 200);
    assert.equal(listing.body.truncated, true);
    assert.ok(listing.body.files.length > 0 && listing.body.files.length <= 500, String(listing.body.files.length));
    const deepest = Math.max(...listing.body.files.map((file: { path: string }) => file.path.split('/').length));
    assert.ok(deepest <= 17, `walked ${deepest} levels deep`);
  });
});

describe("a task's files need the read scope", () => {
  const WRITE = 'files-writer-token';
  const READ = 'files-reader-token';
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
  const suite = runnerSuite({
    machines: { ...TEST_MACHINES, ...FILE_MACHINES },
    auth: {
      anonymous: 'none',
      tokens: [
        { name: 'writer', sha256: sha256(WRITE), scope: 'write' },
        { name: 'reader', sha256: sha256(READ), scope: 'read' },
      ],
    },
  });

  test('without a token it is 401; with a read token the files are served', async () => {
    const call = (path: string, token?: string, body?: unknown) =>
      fetch(`${suite.runner.baseUrl}${path}`, {
        ...(body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) }),
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      });
    const started = await call('/v1/tasks', WRITE, { machine: 'writes-files', parameters: null });
    assert.equal(started.status, 201);
    // Not left to the suite's clean-up, which has no token: it ends by itself, and is waited for below.
    const { taskId, unit } = (await started.json()) as { taskId: string; unit: string };
    for (const path of [`/v1/tasks/${taskId}/files`, `/v1/tasks/${taskId}/files/out/result.txt`]) {
      assert.equal((await call(path)).status, 401, path);
    }
    const served = await eventually(
      'the file served to the reader once written',
      () => call(`/v1/tasks/${taskId}/files/out/result.txt`, READ),
      (response) => response.status === 200,
    );
    assert.equal(await served.text(), 'result line\n');
    await waitForCollected(suite.runner, unit);
  });
});
