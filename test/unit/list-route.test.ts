/**
 * GET /v1/tasks in its default (brief) view sends the page's JSON as the store made it, in bytes:
 * the same whether compressed (gzip, brotli) or not, with its cursor in a Link header.
 */
import assert from 'node:assert/strict';
import { get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { createApp } from '../../src/api/app.js';
import type { TaskService } from '../../src/tasks/service.js';
import type { PageQuery } from '../../src/tasks/store.js';
import { appOptionsForTests } from '../harness/app-options.js';

const PAGE = Array.from({ length: 2000 }, (_, index) => ({
  taskId: index.toString(16).padStart(8, '0'),
  state: index % 3 === 0 ? 'running' : 'exited',
}));

/** A GET with this Accept-Encoding: the body's bytes as sent, and the headers that say what they are. */
function getWithEncoding(url: string, encoding: string): Promise<{ body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers: { 'accept-encoding': encoding } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ body: Buffer.concat(chunks), headers: response.headers }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

describe('the default list', () => {
  let server: Server;
  let url: string;
  const asked: PageQuery[] = [];

  before(async () => {
    const tasks = {
      briefPageJson: (query: PageQuery) => {
        asked.push(query);
        return { json: Buffer.from(JSON.stringify(PAGE)), next: 4242 };
      },
    } as unknown as TaskService;
    server = createApp(tasks, appOptionsForTests('read'), pino({ level: 'silent' })).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/tasks`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  test('sends the JSON the store made, as JSON, the same by gzip, brotli or neither, with the next page named', async () => {
    const plain = await getWithEncoding(url, 'identity');
    const zipped = await getWithEncoding(url, 'gzip');
    const brotli = await getWithEncoding(url, 'br');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(brotli.headers['content-encoding'], 'br');
    for (const { headers } of [plain, zipped, brotli]) {
      assert.equal(headers['content-type'], 'application/json; charset=utf-8');
      assert.match(String(headers['link']), /[?&]after=4242>; rel="next"/);
    }
    assert.deepEqual(JSON.parse(plain.body.toString()), PAGE);
    assert.deepEqual(JSON.parse(gunzipSync(zipped.body).toString()), PAGE);
    // gzip's header says how hard it tried (XFL, RFC 1952): 4, the fastest level; 0 at zlib's default.
    assert.equal(zipped.body[8], 4, 'gzip at its fastest level');
    assert.deepEqual(JSON.parse(brotliDecompressSync(brotli.body).toString()), PAGE);
    // Brotli at its fastest quality: the very bytes quality 1 makes of the page (4, the middleware's default, makes others).
    const fastest = brotliCompressSync(plain.body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: zlibConstants.BROTLI_MIN_QUALITY } });
    assert.ok(brotli.body.equals(fastest), 'brotli at quality 1');
    for (const { body } of [zipped, brotli]) {
      assert.ok(body.length < plain.body.length / 4, `compressed: ${body.length} of ${plain.body.length} bytes`);
    }
    assert.deepEqual(
      asked.map((query) => [query.limit, query.newestFirst, query.after]),
      [
        [10_000, false, undefined],
        [10_000, false, undefined],
        [10_000, false, undefined],
      ],
    );
  });
});
