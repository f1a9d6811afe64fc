/**
 * A client generated from the runner's OpenAPI document (openapi-typescript's types, committed in
 * test/generated/, with openapi-fetch) drives the running runner, and every answer it gets is
 * checked against the document: status, media type, body schema, required headers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import createClient from 'openapi-fetch';
import { API_TYPES_FILE, apiTypes } from '../../scripts/api-types.js';
import { eventually } from '../../src/embedded/eventually.js';
import type { paths } from '../generated/openapi-types.js';
import { openApiAnswers, type Answer } from '../harness/openapi-answers.js';
import { runnerSuite } from '../harness/suite.js';
import { TEST_MACHINES } from '../harness/test-runner.js';

/** Reads an NDJSON or SSE body line by line as it comes: `until` reads on until the lines so far satisfy it. */
function lineReader(body: ReadableStream<Uint8Array> | null | undefined) {
  assert.ok(body, 'a stream has a body');
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const lines: string[] = [];
  let partial = '';
  return {
    /** Every line so far once `enough` holds for them (or the stream has ended). */
    async until(enough: (lines: string[]) => boolean = () => false): Promise<string[]> {
      while (!enough(lines)) {
        const chunk = await reader.read();
        if (chunk.done) break;
        partial += decoder.decode(chunk.value, { stream: true });
        const complete = partial.split('\n');
        partial = complete.pop() ?? '';
        lines.push(...complete.filter((line) => line !== ''));
      }
      return lines;
    },
    close: () => reader.cancel(),
  };
}

/** A whole NDJSON body, parsed. */
async function ndjsonOf(body: ReadableStream<Uint8Array> | null | undefined): Promise<Record<string, unknown>[]> {
  return (await lineReader(body).until()).map((line) => JSON.parse(line) as Record<string, unknown>);
}

const answer = (response: Response, body?: unknown): Answer => ({ status: response.status, headers: response.headers, body });

describe('a client generated from /v1/openapi.json', () => {
  const suite = runnerSuite({
    logs: { heartbeatSec: 0.2 },
    limits: { maxEventStreams: 1 },
    machines: { ...TEST_MACHINES, 'writes-a-file': { exec: ['/bin/sh', '-c', 'printf 0123456789 > result.txt; echo written'] } },
  });
  let document: ReturnType<typeof openApiAnswers>;
  const api = () => createClient<paths>({ baseUrl: suite.runner.baseUrl });

  test('the committed client types are those of the document the running runner serves', async () => {
    const { data, response } = await api().GET('/v1/openapi.json');
    assert.equal(response.status, 200);
    assert.ok(data);
    assert.equal(data.openapi, '3.1.0');
    assert.equal(await apiTypes(data), readFileSync(API_TYPES_FILE, 'utf8'), 'npm run api:types writes the types of this document');
    document = openApiAnswers(data);
    document.check('/v1/openapi.json', 'get', answer(response, data));
  });

  test('starts a task (again with its Idempotency-Key: the same task), waits for it, lists it by filter, reads its events and logs, deletes it', async () => {
    const client = api();
    const parameters = ['echo hello from a generated client'];
    const key = `openapi-client-${Date.now()}`;
    const started = await client.POST('/v1/tasks', {
      params: { header: { 'Idempotency-Key': key } },
      body: { machine: 'echo', parameters },
    });
    assert.equal(started.response.status, 201, JSON.stringify(started.error));
    assert.ok(started.data);
    const { taskId } = started.data;
    suite.started.add(taskId);
    document.check('/v1/tasks', 'post', answer(started.response, started.data));
    assert.equal(started.response.headers.get('location'), `/v1/tasks/${taskId}`);

    const replay = await client.POST('/v1/tasks', {
      params: { header: { 'Idempotency-Key': key } },
      body: { machine: 'echo', parameters },
    });
    assert.equal(replay.response.status, 200);
    assert.equal(replay.data?.taskId, taskId);
    assert.equal(replay.response.headers.get('idempotent-replayed'), 'true');
    document.check('/v1/tasks', 'post', answer(replay.response, replay.data));

    const reused = await client.POST('/v1/tasks', {
      params: { header: { 'Idempotency-Key': key } },
      body: { machine: 'echo', parameters: ['echo another request'] },
    });
    assert.equal(reused.response.status, 422);
    assert.equal(reused.error?.code, 'IDEMPOTENCY_KEY_REUSED');
    document.check('/v1/tasks', 'post', answer(reused.response, reused.error));

    const finished = await client.GET('/v1/tasks/{taskId}', { params: { path: { taskId }, query: { wait: 'finished', timeout: 30 } } });
    assert.equal(finished.response.status, 200);
    assert.equal(finished.data?.state, 'exited');
    assert.equal(finished.data.exitCode, 0);
    assert.equal(finished.data.result, 'success');
    assert.ok(finished.data.usage, 'a finished task keeps the usage it ended with');
    document.check('/v1/tasks/{taskId}', 'get', answer(finished.response, finished.data));

    const exited = await client.GET('/v1/tasks', { params: { query: { view: 'full', machine: 'echo', state: 'exited' } } });
    assert.equal(exited.response.status, 200);
    assert.ok(exited.data);
    document.check('/v1/tasks', 'get', answer(exited.response, exited.data));
    assert.deepEqual(
      exited.data.map((task) => task.taskId),
      [taskId],
    );
    const running = await client.GET('/v1/tasks', { params: { query: { state: 'running,created,stopping' } } });
    assert.deepEqual(running.data, [], 'the filter by state');
    document.check('/v1/tasks', 'get', answer(running.response, running.data));

    const events = await client.GET('/v1/events', { params: { query: { task: taskId, after: '0', follow: 'false' } }, parseAs: 'stream' });
    assert.equal(events.response.status, 200);
    const eventLines = await ndjsonOf(events.data);
    for (const line of eventLines) document.check('/v1/events', 'get', answer(events.response, line));
    assert.deepEqual(
      eventLines.map((line) => `${String(line['type'])}:${String(line['state'])}`),
      ['task:created', 'task:running', 'task:exited'],
    );

    const logs = await client.GET('/v1/tasks/{taskId}/logs', { params: { path: { taskId } }, parseAs: 'stream' });
    assert.equal(logs.response.status, 200);
    const logLines = await ndjsonOf(logs.data);
    assert.ok(logLines.length >= 1);
    for (const line of logLines) document.check('/v1/tasks/{taskId}/logs', 'get', answer(logs.response, line));
    assert.ok(
      logLines.some((line) => line['message'] === 'hello from a generated client'),
      JSON.stringify(logLines),
    );

    const deleted = await client.DELETE('/v1/tasks/{taskId}', { params: { path: { taskId } } });
    assert.deepEqual(deleted.data, { success: true });
    document.check('/v1/tasks/{taskId}', 'delete', answer(deleted.response, deleted.data));
    suite.started.delete(taskId);
    const gone = await client.GET('/v1/tasks/{taskId}', { params: { path: { taskId } } });
    assert.equal(gone.response.status, 404);
    assert.equal(gone.error?.code, 'TASK_NOT_FOUND');
    document.check('/v1/tasks/{taskId}', 'get', answer(gone.response, gone.error));
  });

  test('follows the event stream live (heartbeats, then the events of a task up to its stop); a second stream over the cap is 429 with Retry-After', async () => {
    const client = api();
    const stream = await client.GET('/v1/events', { params: { query: {} }, parseAs: 'stream' });
    assert.equal(stream.response.status, 200);
    assert.match(stream.response.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    const lines = lineReader(stream.data);
    await lines.until((seen) => seen.some((line) => line.includes('"type":"heartbeat"')));

    const refused = await client.GET('/v1/events', { params: { query: {} } });
    assert.equal(refused.response.status, 429);
    assert.equal(refused.error?.code, 'TOO_MANY_EVENT_STREAMS');
    document.check('/v1/events', 'get', answer(refused.response, refused.error));

    const started = await client.POST('/v1/tasks', { body: { machine: 'echo', parameters: ['echo sleeping', 'sleep 60'] } });
    assert.ok(started.data, JSON.stringify(started.error));
    const { taskId } = started.data;
    suite.started.add(taskId);
    assert.equal(started.data.state, 'running');
    document.check('/v1/tasks', 'post', answer(started.response, started.data));

    const live = await client.GET('/v1/tasks/{taskId}', { params: { path: { taskId } } });
    assert.ok(live.data?.usage, 'a running task: its usage read just now');
    assert.ok(live.data.usage.sampledAt >= live.data.createdAt);
    document.check('/v1/tasks/{taskId}', 'get', answer(live.response, live.data));

    const stopped = await client.POST('/v1/tasks/{taskId}/stop', { params: { path: { taskId } } });
    assert.equal(stopped.response.status, 200);
    assert.ok(stopped.data && ['stopping', 'exited'].includes(stopped.data.state), stopped.data?.state);
    document.check('/v1/tasks/{taskId}/stop', 'post', answer(stopped.response, stopped.data));

    const seen = (
      await lines.until((so) => so.some((line) => line.includes(`"taskId":"${taskId}"`) && line.includes('"state":"exited"')))
    ).map((line) => JSON.parse(line) as { type: string; taskId?: string; state?: string; exitCode?: number });
    // Ends the stream: the runner frees its slot.
    await lines.close();
    for (const line of seen) document.check('/v1/events', 'get', answer(stream.response, line));
    assert.equal(seen[0]?.type, 'heartbeat', 'an idle stream: heartbeats (every 0.2 s)');
    // A task that ends at once on SIGTERM may be seen by systemd's next report already exited: no stopping then.
    assert.deepEqual(
      seen
        .filter((line) => line.type === 'task')
        .map((line) => `${line.state}:${line.exitCode}`)
        .filter((state) => state !== 'stopping:null'),
      ['created:null', 'running:null', 'exited:-1'],
    );

    // The stream is closed: a new one is served again.
    const again = await eventually(
      'the slot freed',
      () => client.GET('/v1/events', { params: { query: { follow: 'false', after: '0', format: 'sse' } }, parseAs: 'text' }),
      (reply) => reply.response.status === 200,
    );
    assert.match(again.response.headers.get('content-type') ?? '', /^text\/event-stream/);
    document.check('/v1/events', 'get', answer(again.response, again.data));
    const sent = (again.data ?? '')
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice('data: '.length)) as { taskId: string; state: string });
    const eventSchema = { $ref: '#/components/schemas/TaskEventLine' };
    for (const event of sent) document.validate(eventSchema, event, 'an SSE task event');
    assert.equal(sent.filter((event) => event.taskId === taskId).at(-1)?.state, 'exited', JSON.stringify(sent));
  });

  test("lists a task's files and downloads one, whole and a byte range; a range beyond it is 416", async () => {
    const client = api();
    const started = await client.POST('/v1/tasks', { body: { machine: 'writes-a-file', parameters: null } });
    assert.ok(started.data, JSON.stringify(started.error));
    const { taskId } = started.data;
    suite.started.add(taskId);
    const path = { taskId };
    const finished = await client.GET('/v1/tasks/{taskId}', { params: { path, query: { wait: 'finished' } } });
    assert.equal(finished.data?.exitCode, 0);

    const listing = await client.GET('/v1/tasks/{taskId}/files', { params: { path } });
    assert.deepEqual(
      listing.data?.files.map((file) => [file.path, file.type, file.size]),
      [['result.txt', 'file', 10]],
    );
    document.check('/v1/tasks/{taskId}/files', 'get', answer(listing.response, listing.data));

    const filePath = { taskId, path: 'result.txt' };
    const whole = await client.GET('/v1/tasks/{taskId}/files/{path}', { params: { path: filePath }, parseAs: 'text' });
    assert.equal(whole.response.status, 200);
    assert.equal(whole.data, '0123456789');
    document.check('/v1/tasks/{taskId}/files/{path}', 'get', answer(whole.response, whole.data));

    const part = await client.GET('/v1/tasks/{taskId}/files/{path}', {
      params: { path: filePath, header: { Range: 'bytes=2-4' } },
      parseAs: 'text',
    });
    assert.equal(part.response.status, 206);
    assert.equal(part.data, '234');
    assert.equal(part.response.headers.get('content-range'), 'bytes 2-4/10');
    document.check('/v1/tasks/{taskId}/files/{path}', 'get', answer(part.response, part.data));

    const beyond = await client.GET('/v1/tasks/{taskId}/files/{path}', { params: { path: filePath, header: { Range: 'bytes=10-' } } });
    assert.equal(beyond.response.status, 416);
    assert.equal(beyond.error?.code, 'RANGE_NOT_SATISFIABLE');
    document.check('/v1/tasks/{taskId}/files/{path}', 'get', answer(beyond.response, beyond.error));
  });

  test('a request the document does not allow is refused as the document says', async () => {
    const client = api();
    const tooMany = await client.GET('/v1/tasks', { params: { query: { view: 'full', limit: 1001 } } });
    assert.equal(tooMany.response.status, 400);
    assert.equal(tooMany.error?.code, 'INVALID_REQUEST');
    document.check('/v1/tasks', 'get', answer(tooMany.response, tooMany.error));

    const unknown = await client.POST('/v1/tasks', { body: { machine: 'no-such-machine', parameters: null } });
    assert.equal(unknown.response.status, 400);
    assert.equal(unknown.error?.code, 'UNKNOWN_MACHINE');
    document.check('/v1/tasks', 'post', answer(unknown.response, unknown.error));
  });

  test('the service endpoints answer as the document says', async () => {
    const client = api();
    const root = await client.GET('/');
    assert.equal(root.data?.name, 'task_runner');
    document.check('/', 'get', answer(root.response, root.data));
    const v1 = await client.GET('/v1');
    assert.deepEqual(v1.data, { success: true });
    document.check('/v1', 'get', answer(v1.response, v1.data));
    const schema = await client.GET('/v1/schema');
    assert.ok(schema.data?.['/tasks']);
    document.check('/v1/schema', 'get', answer(schema.response, schema.data));
    const health = await client.GET('/healthz');
    assert.deepEqual(health.data, { status: 'ok' });
    document.check('/healthz', 'get', answer(health.response, health.data));
    const ready = await client.GET('/readyz');
    assert.equal(ready.data?.status, 'ready');
    document.check('/readyz', 'get', answer(ready.response, ready.data));
    const metrics = await client.GET('/metrics', { parseAs: 'text' });
    assert.match(metrics.data ?? '', /^# HELP tessia_/m);
    document.check('/metrics', 'get', answer(metrics.response, metrics.data));
  });
});
