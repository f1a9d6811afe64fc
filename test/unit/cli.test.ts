import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { mayRetry, printable, retryAfterSeconds } from '../../src/cli/client.js';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import { SCHEMA_VERSION } from '../../src/tasks/store-schema.js';
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

test("serve refuses a newer release's task store with exit code 2, one line that says what to do, and leaves it as it was", () => {
  const state = join(directory, 'newer-store');
  mkdirSync(state);
  const file = join(state, 'tasks.sqlite3');
  const db = new Database(file);
  db.exec('CREATE TABLE tasks (seq INTEGER PRIMARY KEY, task_id TEXT)');
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = readFileSync(file);
  const run = cli('serve', '--listen', '127.0.0.1:0', '--state-dir', state);
  assert.equal(run.status, 2, run.stderr);
  const said = run.stderr.split('\n').filter((line) => line.startsWith('tessia-task-runner: '));
  assert.equal(said.length, 1, run.stderr);
  assert.match(
    said[0] ?? '',
    new RegExp(`schema version ${SCHEMA_VERSION + 1}, made by a newer tessia-task-runner.*Install the newer release again`),
  );
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'a message, not a stack trace');
  assert.deepEqual(readFileSync(file), before);
});

test("--version prints package.json's version", () => {
  const run = cli('--version');
  assert.equal(run.status, 0);
  const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string };
  assert.equal(run.stdout, `tessia-task-runner ${version}\n`);
});

const ndjsonLines = (response: import('node:http').ServerResponse, lines: unknown[]) =>
  response.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(lines.map((line) => `${JSON.stringify(line)}\n`).join(''));

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

describe('tokens, pages and task text in the terminal, against a stand-in runner', () => {
  let runner: FakeRunner | undefined;
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
  });
  const serve = async (script: Script) => (runner = await fakeRunner(script));
  const task = (args: string[], env: Record<string, string> = {}) => runTaskCli([...args, '--url', runner!.url], env);
  const TOKEN = 'tok-0123456789abcdef';
  const listAnswer: Script = (_seen, response) => json(response, 200, []);

  test('--token on the command line is refused (exit 2) with where to put it instead, and nothing is sent', async () => {
    await serve(listAnswer);
    for (const args of [
      ['list', '--token', TOKEN],
      ['list', `--token=${TOKEN}`],
    ]) {
      const run = await task(args);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /--token is not accepted: a token on the command line is readable by every local user/);
      assert.match(run.stderr, /--token-file FILE.*\$TESSIA_RUNNER_TOKEN_FILE.*\$TESSIA_RUNNER_TOKEN/);
    }
    assert.equal(runner!.requests.length, 0);
  });

  test('the token comes from --token-file, else $TESSIA_RUNNER_TOKEN_FILE, else $TESSIA_RUNNER_TOKEN', async () => {
    await serve(listAnswer);
    const file = join(directory, 'token');
    writeFileSync(file, `${TOKEN}-file\n`, { mode: 0o600 });
    const other = join(directory, 'other-token');
    writeFileSync(other, `${TOKEN}-env-file\nsecond line ignored\n`, { mode: 0o600 });
    const runs = [
      await task(['list', '--token-file', file], { TESSIA_RUNNER_TOKEN_FILE: other, TESSIA_RUNNER_TOKEN: TOKEN }),
      await task(['list'], { TESSIA_RUNNER_TOKEN_FILE: other, TESSIA_RUNNER_TOKEN: TOKEN }),
      await task(['list'], { TESSIA_RUNNER_TOKEN: TOKEN }),
      await task(['list']),
    ];
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      runner!.requests.map((seen) => seen.headers.authorization),
      [`Bearer ${TOKEN}-file`, `Bearer ${TOKEN}-env-file`, `Bearer ${TOKEN}`, undefined],
    );
  });

  test('a token file that cannot be read, or is empty, is a usage error naming the file, nothing sent', async () => {
    await serve(listAnswer);
    const missing = await task(['list', '--token-file', join(directory, 'no-such-token')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--token-file: cannot read .*no-such-token: ENOENT/);
    const empty = join(directory, 'empty-token');
    writeFileSync(empty, '\n');
    const blank = await task(['list'], { TESSIA_RUNNER_TOKEN_FILE: empty });
    assert.equal(blank.code, 2, blank.stderr);
    assert.match(blank.stderr, /\$TESSIA_RUNNER_TOKEN_FILE: .*empty-token is empty/);
    assert.equal(runner!.requests.length, 0);
  });

  test('list follows the Link rel="next" pages of the runner, and no link to another origin', async () => {
    await serve((seen, response) => {
      const after = new URL(seen.path, 'http://x').searchParams.get('after');
      if (after === null) json(response, 200, [{ taskId: 'aaaaaaaa', state: 'exited' }], { link: '</v1/tasks?after=1>; rel="next"' });
      else if (after === '1')
        json(response, 200, [{ taskId: 'bbbbbbbb', state: 'running' }], {
          link: '<http://elsewhere.example/v1/tasks?after=2>; rel="next"',
        });
      else json(response, 200, [{ taskId: 'cccccccc', state: 'running' }]);
    });
    const run = await task(['list'], { TESSIA_RUNNER_TOKEN: TOKEN });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'aaaaaaaa\texited\nbbbbbbbb\trunning\n');
    assert.deepEqual(
      runner!.requests.map((seen) => seen.path),
      ['/v1/tasks', '/v1/tasks?after=1'],
    );
  });

  test("logs: escape sequences and control characters a task wrote never reach the terminal; the colours are the CLI's", async () => {
    const hostile = 'before\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x9b1mover\x1b]52;c;cHduZWQ=\x1b\\after\tend';
    await serve((_seen, response) =>
      ndjsonLines(response, [
        { type: 'entry', timestamp: 't', source: 'task', priority: 4, message: hostile, fields: { SYSLOG_IDENTIFIER: 'evil\x1b[8m' } },
        { type: 'end', taskId: 'abc', state: 'exited', exitCode: 0 },
      ]),
    );
    const plain = await task(['logs', 'abc', '-f']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, 't evil: beforeredoverafter\tend\n');
    const colored = await task(['logs', 'abc', '-f', '--color']);
    assert.equal(colored.stdout, '\x1b[33mt evil: beforeredoverafter\tend\x1b[0m\n', 'the warning in yellow, nothing else');
    const asJson = await task(['logs', 'abc', '--json']);
    // eslint-disable-next-line no-control-regex -- control characters are what must be absent
    assert.doesNotMatch(asJson.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    assert.equal(JSON.parse(asJson.stdout.split('\n')[0] ?? '').message, hostile, 'the JSON still says what the task wrote');
  });
});

describe('which socket or URL the task commands use', () => {
  let runner: FakeRunner | undefined;
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
  });

  test('$TESSIA_RUNNER_SOCKET: through that Unix socket; --url wins over it; --socket wins over $TESSIA_RUNNER_URL', async () => {
    const socketPath = join(directory, 'api.sock');
    runner = await fakeRunner((_seen, response) => json(response, 200, []), { socketPath });
    const viaEnvironment = await runTaskCli(['list'], { TESSIA_RUNNER_SOCKET: socketPath });
    assert.equal(viaEnvironment.code, 0, viaEnvironment.stderr);
    assert.equal(runner.requests.length, 1);
    const viaFlag = await runTaskCli(['list', '--socket', socketPath], { TESSIA_RUNNER_URL: 'http://127.0.0.1:1' });
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.equal(runner.requests.length, 2);
    // A URL on the command line beats the socket in the environment: port 1 answers nobody.
    const urlFlag = await runTaskCli(['list', '--url', 'http://127.0.0.1:1', '--timeout', '2'], { TESSIA_RUNNER_SOCKET: socketPath });
    assert.equal(urlFlag.code, 5, urlFlag.stderr);
    assert.match(urlFlag.stderr, /127\.0\.0\.1:1/);
    assert.equal(runner.requests.length, 2, 'nothing went through the socket');
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
