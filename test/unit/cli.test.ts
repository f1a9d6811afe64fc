import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { mayRetry, printable, retryAfterSeconds } from '../../src/cli/client.js';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { fakeRunner, json, runTaskCli, type FakeRunner, type Script } from './fake-runner.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-cli-'));
after(() => rmSync(directory, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(REPO_DIR, 'dist/cli/main.js'), ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' },
  });
}

test('serve refuses an invalid config with exit code 2 and names the key and the problem', () => {
  const path = join(directory, 'bad.yaml');
  writeFileSync(path, 'machines:\n  echo:\n    builtin: echo\n    limits:\n      memoryMax: lots\n');
  const run = cli('serve', '--config', path);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /machines\.echo\.limits\.memoryMax: "lots" is not a size/);
});

test('serve refuses a config that is not YAML with exit code 2', () => {
  const path = join(directory, 'broken.yaml');
  writeFileSync(path, 'machines: [\n');
  const run = cli('serve', '--config', path);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /is not valid YAML/);
});

test('serve refuses a --listen that is not HOST:PORT with exit code 2', () => {
  const run = cli('serve', '--listen', 'nonsense', '--state-dir', join(directory, 'state'));
  assert.equal(run.status, 2);
  assert.match(run.stderr, /listen: must be HOST:PORT/);
});

test('serve refuses unknown flags with exit code 2', () => {
  const run = cli('serve', '--colour', 'blue');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--colour/);
});

test('an unknown command prints the usage and exits 2', () => {
  const run = cli('fly');
  assert.equal(run.status, 2);
  assert.match(run.stderr, /unknown command: fly/);
  assert.match(run.stderr, /Usage: tessia-task-runner serve/);
});

test('--help prints the usage and exits 0', () => {
  const run = cli('serve', '--help');
  assert.equal(run.status, 0);
  assert.match(run.stdout, /--state-dir DIR/);
});

test('serve exits non-zero with a clear message when the system bus is unreachable', () => {
  const run = cli('serve', '--listen', '127.0.0.1:0', '--state-dir', join(directory, 'state'));
  assert.equal(run.status, 1);
  assert.match(run.stderr, /nonexistent\/bus|ENOENT/);
});

describe('task commands against a stand-in runner', () => {
  let runner: FakeRunner | undefined;
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
  });
  const serve = async (script: Script) => (runner = await fakeRunner(script));
  const task = (args: string[], env: Record<string, string> = {}) => runTaskCli([...args, '--url', runner!.url], env);

  const proxyPage = `<html>\r\n<head><title>502 Bad Gateway</title></head>\x1b[2J\x07\u202e<body>${'padding '.repeat(500)}</body></html>\n`;
  const badGateway: Script = (_seen, response) => response.writeHead(502, { 'content-type': 'text/html' }).end(proxyPage);
  const assertPrintableAndShort = (stderr: string) => {
    assert.doesNotMatch(stderr.trimEnd(), /[\p{Cc}\p{Cf}]/u, 'no control characters from the body');
    assert.ok(stderr.length < 400, `an excerpt, not the whole body: ${stderr.length} characters`);
  };
  const entry = (message: string) => `${JSON.stringify({ type: 'entry', timestamp: 't', source: 'task', priority: 6, message })}\n`;
  const endLine = (exitCode: number) => `${JSON.stringify({ type: 'end', taskId: 'abc', state: 'exited', exitCode })}\n`;
  const ndjson = (response: import('node:http').ServerResponse) => response.writeHead(200, { 'content-type': 'application/x-ndjson' });

  describe("an answer that is not the runner's JSON", () => {
    test('an HTML 502 to list exits 5 with the status and a short printable excerpt, not as a usage error', async () => {
      await serve(badGateway);
      const run = await task(['list']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /answered 502 with a body that is not the runner's JSON: "<html> <head><title>502 Bad Gateway<\/title>/);
      assert.doesNotMatch(run.stderr, /--parameters|Usage:/);
      assertPrintableAndShort(run.stderr);
    });

    test('an HTML 502 to start (valid --parameters) exits 5, sent once', async () => {
      await serve(badGateway);
      const run = await task(['start', 'echo', '--parameters', '["echo hi"]']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /answered 502/);
      assert.doesNotMatch(run.stderr, /--parameters|Usage:/);
    });

    test('a 200 whose body is not JSON exits 5 with the status', async () => {
      await serve((_seen, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
      const run = await task(['show', 'abc']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /answered 200 with a body that is not the runner's JSON: "<html>login<\/html>"/);
    });

    test('logs: an error whose body is not JSON exits 5 with the status, no SyntaxError', async () => {
      await serve((_seen, response) => response.writeHead(500, { 'content-type': 'text/html' }).end(proxyPage));
      const run = await task(['logs', 'abc', '-f']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /answered 500 with a body that is not the runner's JSON/);
      assert.doesNotMatch(run.stderr, /SyntaxError|--parameters/);
      assertPrintableAndShort(run.stderr);
    });

    test('logs: a stream line that is not JSON exits 5 after printing the lines before it', async () => {
      await serve((_seen, response) => ndjson(response).end(`${entry('first')}<html>\x1b[31m502 Bad Gateway</html>\n`));
      const run = await task(['logs', 'abc']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stdout, /task: first/);
      assert.match(run.stderr, /answered 200 with a line that is not the runner's JSON: "<html> \[31m502 Bad Gateway<\/html>"/);
      assert.doesNotMatch(run.stderr, /SyntaxError|--parameters/);
    });

    test('logs: a last line without a newline is checked too', async () => {
      await serve((_seen, response) => ndjson(response).end('<html>no newline</html>'));
      const run = await task(['logs', 'abc']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /not the runner's JSON: "<html>no newline<\/html>"/);
    });

    test('--parameters or --parameters-file that is not JSON is still a usage error (exit 2), nothing sent', async () => {
      await serve((_seen, response) => json(response, 201, { taskId: 'abc', state: 'running' }));
      const inline = await task(['start', 'echo', '--parameters', '{not json']);
      assert.equal(inline.code, 2, inline.stderr);
      assert.match(inline.stderr, /^--parameters: not JSON/);
      const file = join(directory, 'parameters.json');
      writeFileSync(file, '[unclosed');
      const fromFile = await task(['start', 'echo', '--parameters-file', file]);
      assert.equal(fromFile.code, 2, fromFile.stderr);
      assert.match(fromFile.stderr, /--parameters-file .*: not JSON/);
      const missing = await task(['start', 'echo', '--parameters-file', join(directory, 'missing.json')]);
      assert.equal(missing.code, 2, missing.stderr);
      assert.equal(runner!.requests.length, 0);
    });
  });

  describe('--timeout', () => {
    const silent: Script = () => {};

    test('no answer within --timeout: exit 5 naming the URL and the timeout', async () => {
      await serve(silent);
      const run = await task(['list', '--timeout', '0.5']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, new RegExp(`no answer from ${runner!.url}/v1/tasks within --timeout 0\\.5 s`));
      assert.ok(run.elapsedMs >= 450 && run.elapsedMs < 10_000, `${run.elapsedMs} ms`);
    });

    test('$TESSIA_RUNNER_TIMEOUT sets it when --timeout is not given', async () => {
      await serve(silent);
      const run = await task(['show', 'abc'], { TESSIA_RUNNER_TIMEOUT: '0.5' });
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /\/v1\/tasks\/abc within --timeout 0\.5 s/);
      assert.ok(run.elapsedMs < 10_000, `${run.elapsedMs} ms`);
    });

    test('an answer whose body stops coming times out too', async () => {
      await serve((_seen, response) => response.writeHead(200, { 'content-type': 'application/json' }).write('[{"taskId":'));
      const run = await task(['list', '--timeout', '0.5']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /within --timeout 0\.5 s/);
    });

    test('logs -f: the timeout covers the start of the stream only, not a quiet stream', async () => {
      await serve((_seen, response) => {
        ndjson(response).write(entry('started'));
        setTimeout(() => response.end(endLine(0)), 1500);
      });
      const run = await task(['logs', 'abc', '-f', '--timeout', '0.5']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /task: started/);
      assert.match(run.stderr, /-- task abc exited, exit code 0 --/);
      assert.ok(run.elapsedMs >= 1400, `${run.elapsedMs} ms`);
    });

    test('logs -f: a stream that does not start within --timeout exits 5', async () => {
      await serve(silent);
      const run = await task(['logs', 'abc', '-f', '--timeout', '0.5']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /no answer from .*\/v1\/tasks\/abc\/logs\?follow=true within --timeout 0\.5 s/);
    });

    test('logs without -f: a dump that stalls for --timeout exits 5', async () => {
      await serve((_seen, response) => ndjson(response).write(entry('one')));
      const run = await task(['logs', 'abc', '--timeout', '0.5']);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stdout, /task: one/);
      assert.match(run.stderr, /the stream from .*\/logs stalled for --timeout 0\.5 s/);
    });

    test('a --timeout or $TESSIA_RUNNER_TIMEOUT that is not a positive number is a usage error', async () => {
      await serve(silent);
      for (const [args, env] of [
        [['--timeout', '0']],
        [['--timeout', 'soon']],
        [['--timeout=-1']],
        [[], { TESSIA_RUNNER_TIMEOUT: '1e3' }],
      ] as const) {
        const run = await task(['list', ...args], env);
        assert.equal(run.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${run.stderr}`);
        assert.match(run.stderr, /(--timeout|\$TESSIA_RUNNER_TIMEOUT): ".*" is not a number of seconds/);
      }
      assert.equal(runner!.requests.length, 0);
    });
  });

  describe('Retry-After', () => {
    const busy = { detail: '1000 tasks are active already', code: 'TOO_MANY_TASKS' };
    const systemdGone = { detail: 'task abc: the bus is gone', code: 'SYSTEMD_UNAVAILABLE' };
    const shuttingDown = { detail: 'the runner is shutting down', code: 'SHUTTING_DOWN' };

    test('start: 429 TOO_MANY_TASKS with Retry-After, then 201: waits, sends it again, prints the id', async () => {
      await serve((_seen, response, index) =>
        index === 0 ? json(response, 429, busy, { 'retry-after': '1' }) : json(response, 201, { taskId: 'abc', state: 'running' }),
      );
      const run = await task(['start', 'echo', '--parameters', '["echo hi"]']);
      assert.equal(runner!.requests.length, 2);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'abc\n');
      assert.ok(run.elapsedMs >= 950, `waited as asked: ${run.elapsedMs} ms`);
      for (const seen of runner!.requests)
        assert.deepEqual(
          [seen.method, seen.path, JSON.parse(seen.body)],
          ['POST', '/v1/tasks', { machine: 'echo', parameters: ['echo hi'] }],
        );
    });

    test('start: 503 SYSTEMD_UNAVAILABLE is sent exactly once (the task may exist): exit 5', async () => {
      await serve((_seen, response) => json(response, 503, systemdGone, { 'retry-after': '1' }));
      const run = await task(['start', 'echo']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /503: task abc: the bus is gone \(not retried: it may have taken effect\)/);
    });

    test('stop: 503 SYSTEMD_UNAVAILABLE is sent exactly once (a second stop kills): exit 5', async () => {
      await serve((_seen, response) => json(response, 503, systemdGone, { 'retry-after': '1' }));
      const run = await task(['stop', 'abc']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
    });

    test("start: a 503 that is not the runner's JSON is sent exactly once", async () => {
      await serve((_seen, response) => response.writeHead(503, { 'retry-after': '1' }).end('Service Unavailable'));
      const run = await task(['start', 'echo']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /answered 503 with a body that is not the runner's JSON: "Service Unavailable"/);
    });

    test('delete: 503 SHUTTING_DOWN (nothing done) is sent again', async () => {
      await serve((_seen, response, index) =>
        index === 0 ? json(response, 503, shuttingDown, { 'retry-after': '1' }) : json(response, 200, { success: true }),
      );
      const run = await task(['delete', 'abc']);
      assert.equal(runner!.requests.length, 2);
      assert.equal(run.code, 0, run.stderr);
    });

    test('list: a Retry-After given as an HTTP date is honoured', async () => {
      await serve((_seen, response, index) =>
        index === 0
          ? json(response, 503, systemdGone, { 'retry-after': new Date(Date.now() + 2000).toUTCString() })
          : json(response, 200, [{ taskId: 'abc', state: 'running' }]),
      );
      const run = await task(['list']);
      assert.equal(runner!.requests.length, 2);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'abc\trunning\n');
      assert.ok(run.elapsedMs >= 950, `${run.elapsedMs} ms`);
    });

    test('logs -f: a 503 before the stream is retried, then the stream is followed', async () => {
      await serve((_seen, response, index) =>
        index === 0 ? json(response, 503, shuttingDown, { 'retry-after': '1' }) : ndjson(response).end(`${entry('hello')}${endLine(0)}`),
      );
      const run = await task(['logs', 'abc', '-f']);
      assert.equal(runner!.requests.length, 2);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /task: hello/);
    });

    test('show: retried while --timeout allows, then exit 5 with the status', async () => {
      await serve((_seen, response) => json(response, 503, systemdGone, { 'retry-after': '1' }));
      const run = await task(['show', 'abc', '--timeout', '2.5']);
      assert.ok(runner!.requests.length >= 2 && runner!.requests.length <= 3, `${runner!.requests.length} requests`);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /503: task abc: the bus is gone \(gave up after [12] retr(y|ies) within --timeout 2\.5 s\)/);
      assert.ok(run.elapsedMs < 8000, `${run.elapsedMs} ms`);
    });

    test('a Retry-After past the --timeout budget: no wait, exit 5 at once', async () => {
      await serve((_seen, response) => json(response, 429, busy, { 'retry-after': '120' }));
      const run = await task(['list', '--timeout', '20']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /429: .*\(not retried: Retry-After 120 does not fit in --timeout 20 s\)/);
      assert.ok(run.elapsedMs < 10_000, `gave up without waiting: ${run.elapsedMs} ms`);
    });

    test('a 429 without Retry-After is not retried', async () => {
      await serve((_seen, response) => json(response, 429, busy));
      const run = await task(['list']);
      assert.equal(runner!.requests.length, 1);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /429: 1000 tasks are active already \(not retried: no Retry-After\)/);
    });
  });
});

describe('the retry rule and the excerpts, as functions', () => {
  test('retryAfterSeconds reads delay-seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterSeconds('5', now), 5);
    assert.equal(retryAfterSeconds(' 0 ', now), 0);
    assert.equal(retryAfterSeconds('Thu, 01 Jan 2026 00:00:07 GMT', now), 7);
    assert.equal(retryAfterSeconds('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a date in the past: now');
    assert.equal(retryAfterSeconds(undefined, now), undefined);
    assert.equal(retryAfterSeconds('soon', now), undefined);
    assert.equal(retryAfterSeconds('-3', now), undefined);
  });

  test('mayRetry: GET always on 429/503; POST and DELETE only when nothing was done', () => {
    assert.equal(mayRetry('GET', 503, undefined), true);
    assert.equal(mayRetry('GET', 429, 'TOO_MANY_TASKS'), true);
    assert.equal(mayRetry('POST', 429, 'TOO_MANY_TASKS'), true);
    assert.equal(mayRetry('DELETE', 503, 'SHUTTING_DOWN'), true);
    assert.equal(mayRetry('POST', 503, 'SYSTEMD_UNAVAILABLE'), false);
    assert.equal(mayRetry('POST', 503, undefined), false);
    assert.equal(mayRetry('GET', 500, undefined), false);
    assert.equal(mayRetry('POST', 500, 'SHUTTING_DOWN'), false);
  });

  test('printable: one line, no control or bidi characters, cut at the length asked', () => {
    assert.equal(printable('a\r\n\tb\x1b[31mc\u202ed\x00'), 'a b [31mc d');
    assert.equal(printable('x'.repeat(10), 4), 'xxxx…');
    assert.equal(printable('😀😀😀', 2), '😀😀…', 'never half a character');
  });
});
