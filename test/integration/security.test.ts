/** Authentication, authorization, audit, secrets kept out of logs, the refusal of open listeners and reloads, against real sockets. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../../src/embedded/eventually.js';
import { APP_DIR_INSIDE, PrivateSystemd } from '../../src/embedded/private-systemd.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
import { stringify } from 'yaml';
import { TEST_MACHINES, fileForRunner, startTestRunner } from '../harness/test-runner.js';
import { cleanUp, unitsOfTasks, waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerFields } from '../harness/runner-fields.js';
import { testPki, type Pem } from '../harness/tls.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const WRITE_TOKEN = 'write-token-0123456789abcdef';
const READ_TOKEN = 'read-token-0123456789abcdef';

function withToken(baseUrl: string, token?: string, raw?: string) {
  return async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (raw !== undefined) headers['authorization'] = raw;
    else if (token) headers['authorization'] = `Bearer ${token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(baseUrl + path, init);
    const text = await response.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // text
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
}

describe('bearer tokens', () => {
  let runner: RunnerService;
  const auditLog = async () => (await runner.journalEntries()).map(runnerFields);
  const started = new Set<string>();
  // One runner with a write token in the config and a read token in a token file, for every test.
  before(async () => {
    const tokenFile = fileForRunner('tokens.yaml', `- name: viewer\n  sha256: ${sha256(READ_TOKEN)}\n  scope: read\n`);
    runner = await startTestRunner({
      auth: { tokens: [{ name: 'mesh-control', sha256: sha256(WRITE_TOKEN), scope: 'write' }], tokenFile },
    });
  });
  after(async () => {
    // Undefined when before() failed.
    if ((runner as RunnerService | undefined) === undefined) return;
    await cleanUp(
      runner,
      {
        post: (path: string) => withToken(runner.baseUrl, WRITE_TOKEN)('POST', path),
        get: (path: string) => withToken(runner.baseUrl, WRITE_TOKEN)('GET', path),
      } as any,
      started,
    );
    await runner.stop();
  });

  test('without a token every /v1 request is 401, with a read token reads work and changes are 403', async () => {
    const anonymous = withToken(runner.baseUrl);
    for (const [method, path] of [
      ['GET', '/v1/tasks'],
      ['POST', '/v1/tasks'],
      ['GET', '/v1/tasks/deadbeef/logs'],
      ['DELETE', '/v1/tasks/deadbeef'],
    ] as const) {
      const reply = await anonymous(method, path, method === 'POST' ? { machine: 'echo', parameters: [] } : undefined);
      assert.equal(reply.status, 401, `${method} ${path}`);
      assert.equal(typeof reply.body.detail, 'string');
      assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.equal((await anonymous('GET', '/')).status, 200, 'discovery stays open');
    assert.equal((await withToken(runner.baseUrl, 'wrong-token')('GET', '/v1/tasks')).status, 401);
    assert.equal((await withToken(runner.baseUrl, undefined, 'Basic dXNlcjpwYXNz')('GET', '/v1/tasks')).status, 401);

    const viewer = withToken(runner.baseUrl, READ_TOKEN);
    assert.equal((await viewer('GET', '/v1/tasks')).status, 200);
    const refused = await viewer('POST', '/v1/tasks', { machine: 'echo', parameters: ['echo no'] });
    assert.equal(refused.status, 403);
    assert.match(refused.body.detail, /token:viewer may only read/);
    assert.deepEqual((await viewer('GET', '/v1/tasks')).body, []);
    assert.deepEqual(await unitsOfTasks(runner), []);
  });

  test('a write token starts, stops and deletes; each change is audited with identity, task, machine and source, never the parameters', async () => {
    const writer = withToken(runner.baseUrl, WRITE_TOKEN);
    const marker = `secret-parameter-${Date.now()}`;
    const created = await writer('POST', '/v1/tasks', { machine: 'echo', parameters: [`echo ${marker}`, 'sleep 60'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const taskId = created.body.taskId;
    started.add(taskId);
    const viewer = withToken(runner.baseUrl, READ_TOKEN);
    assert.equal((await viewer('POST', `/v1/tasks/${taskId}/stop`)).status, 403);
    assert.equal((await viewer('DELETE', `/v1/tasks/${taskId}`)).status, 403);
    assert.equal((await writer('POST', `/v1/tasks/${taskId}/stop`)).status, 200);
    const api = { get: (path: string) => writer('GET', path) } as any;
    await waitForState(api, taskId, ['exited']);
    assert.equal((await writer('DELETE', `/v1/tasks/${taskId}`)).status, 200);
    started.delete(taskId);
    // Audit entries are journald entries with fields of their own (as KEY=value text without unix-dgram).
    const entries = await eventually('the audit entries', auditLog, (all) => all.some((e) => e['TESSIA_AUDIT'] === 'task.delete'));
    const audits = entries.filter((entry) => entry['TESSIA_AUDIT'] !== undefined);
    assert.deepEqual(
      audits.map((entry) => entry['TESSIA_AUDIT']),
      ['task.start', 'task.stop', 'task.delete'],
    );
    for (const entry of audits) {
      assert.equal(entry['TESSIA_IDENTITY'], 'token:mesh-control');
      assert.equal(entry['TESSIA_TASK_ID'], taskId);
      assert.equal(entry['TESSIA_MACHINE'], 'echo');
      assert.equal(entry['TESSIA_SOURCE'], '127.0.0.1');
      assert.equal(entry['PRIORITY'], '6');
    }
    assert.ok(!JSON.stringify(entries).includes(marker), 'the parameters are not in the runner log');
    const store = readFileSync(`${runner.systemd.root}${runner.stateDir}/tasks.sqlite3`);
    let wal = Buffer.alloc(0);
    try {
      wal = readFileSync(`${runner.systemd.root}${runner.stateDir}/tasks.sqlite3-wal`);
    } catch {
      // no WAL file at the moment
    }
    assert.ok(!store.includes(marker) && !wal.includes(marker), 'the parameters are not in the store');
  });

  test('the tokens and cookies a client sends reach neither the journal nor the store and its WAL', async () => {
    const headerMarker = `headers-are-logged-${Date.now()}`;
    const secrets = [WRITE_TOKEN, READ_TOKEN, 'wrong-token-5e4d3c2b1a', 'proxy-secret-9f8e7d', 'cookie-secret-6c5b4a'];
    const send = (method: string, path: string, authorization: string, body?: unknown) =>
      fetch(runner.baseUrl + path, {
        method,
        headers: {
          'content-type': 'application/json',
          authorization,
          'proxy-authorization': `Basic ${Buffer.from(`u:${secrets[3]}`).toString('base64')}`,
          cookie: `session=${secrets[4]}`,
          'x-log-marker': headerMarker,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const created = await send('POST', '/v1/tasks', `Bearer ${WRITE_TOKEN}`, { machine: 'echo', parameters: ['echo hi'] });
    assert.equal(created.status, 201);
    const { taskId } = (await created.json()) as { taskId: string };
    started.add(taskId);
    assert.equal((await send('POST', `/v1/tasks/${taskId}/stop`, `Bearer ${READ_TOKEN}`)).status, 403);
    assert.equal((await send('DELETE', `/v1/tasks/${taskId}`, `Bearer ${secrets[2]}`)).status, 401);
    await waitForState({ get: (path: string) => withToken(runner.baseUrl, READ_TOKEN)('GET', path) } as any, taskId, ['exited']);

    // Counts first: the three requests were logged with their headers, so a token would be there.
    const logged = await eventually(
      'the three requests logged with their headers',
      async () => (await runner.systemd.run(['journalctl', '--no-pager', '-o', 'export', '-u', runner.unit])).stdout,
      (text) => text.split(headerMarker).length - 1 >= 3,
    );
    assert.ok(logged.split('[redacted]').length - 1 >= 3 * 3, 'Authorization, Proxy-Authorization and Cookie redacted in each');
    const proxySecret = Buffer.from(`u:${secrets[3]}`).toString('base64');
    for (const secret of [...secrets, proxySecret]) assert.ok(!logged.includes(secret), `"${secret}" is in the journal`);

    const files = ['tasks.sqlite3', 'tasks.sqlite3-wal', 'tasks.sqlite3-shm'].map(
      (name) => `${runner.systemd.root}${runner.stateDir}/${name}`,
    );
    const contents = files.filter((path) => existsSync(path)).map((path) => readFileSync(path));
    assert.ok(contents.length >= 2, 'the store and its WAL exist');
    assert.ok(
      contents.some((content) => content.includes(taskId)),
      'the task is in the store: the search reads the right files',
    );
    for (const content of contents) for (const secret of secrets) assert.ok(!content.includes(secret), `"${secret}" is in the store`);
  });
});

describe('mutual TLS', () => {
  const pki = testPki();
  let runner: RunnerService;
  const auditLog = async () => (await runner.journalEntries()).map(runnerFields);
  after(async () => {
    await (runner as RunnerService | undefined)?.stop();
  });

  function call(method: string, path: string, identity?: Pem, body?: unknown): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const url = new URL(runner.baseUrl + path);
      const req = httpsRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method,
          ca: pki.ca.cert,
          ...(identity ? { cert: identity.cert, key: identity.key } : {}),
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  test('a client with a certificate of the CA is served and audited by its subject; others cannot even connect', async () => {
    runner = await startTestRunner(
      {
        tls: {
          cert: fileForRunner('server.crt', pki.server.cert),
          key: fileForRunner('server.key', pki.server.key),
          clientCa: fileForRunner('ca.crt', pki.ca.cert),
        },
      },
      { tls: true },
    );
    const listed = await call('GET', '/v1/tasks', pki.client);
    assert.equal(listed.status, 200);
    const created = await call('POST', '/v1/tasks', pki.client, { machine: 'echo', parameters: ['echo over mTLS'] });
    assert.equal(created.status, 201);
    await eventually(
      'the task ending',
      async () => (await call('GET', `/v1/tasks/${created.body.taskId}`, pki.client)).body.state,
      (state) => state === 'exited',
    );
    await eventually(
      'the unit collected',
      async () => (await runner.systemd.show(created.body.unit, ['LoadState']))['LoadState'],
      (s) => s === 'not-found',
    );
    const entries = await eventually('the audit entry', auditLog, (all) => all.some((e) => e['TESSIA_AUDIT'] === 'task.start'));
    assert.equal(entries.find((e) => e['TESSIA_AUDIT'] === 'task.start')?.['TESSIA_IDENTITY'], 'certificate:mesh-control');
    await assert.rejects(call('GET', '/v1/tasks'), 'no client certificate: the handshake fails');
    await assert.rejects(call('GET', '/v1/tasks', pki.foreignClient), 'a certificate of another CA: the handshake fails');
    await assert.rejects(fetch(runner.baseUrl.replace('https:', 'http:') + '/v1/'), 'plain HTTP is not served');
  });
});

/** A request over HTTPS on a connection of its own, with the server certificate it was answered with. */
function httpsCall(
  baseUrl: string,
  path: string,
  options: { ca: string; token?: string; identity?: Pem; method?: string },
): Promise<{ status: number; body: any; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(baseUrl + path);
    const req = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: options.method ?? 'GET',
        agent: false,
        ca: options.ca,
        ...(options.identity ? { cert: options.identity.cert, key: options.identity.key } : {}),
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, fingerprint }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

describe('listening off loopback', () => {
  const pki = testPki();
  const serverTls = () => ({ cert: fileForRunner('server.crt', pki.server.cert), key: fileForRunner('server.key', pki.server.key) });
  const aToken = { name: 'a', sha256: sha256('x'), scope: 'read' };

  /** `config.auth: {}`: anonymous callers may do nothing (the harness lets them do everything). */
  async function assertRefused(config: Record<string, unknown>, reason: RegExp): Promise<void> {
    const runner = await startTestRunner(config, { listenHost: '0.0.0.0', expectFailure: true });
    const journal = await eventually(
      'the refusal',
      () => runner.journal(),
      (text) => text.includes('refusing to listen'),
    );
    assert.match(journal, reason);
    assert.notEqual((await runner.systemd.show(runner.unit, ['ActiveState']))['ActiveState'], 'active');
    await runner.stop(); // its starter runs on
    await runner.systemd.systemctl('reset-failed', runner.unit);
  }

  test('is refused without TLS or tokens, with a message naming the fix', async () => {
    await assertRefused(
      { auth: {} },
      /refusing to listen on 0\.0\.0\.0, off loopback, without TLS or tokens.*tls\.clientCa.*insecure: true/,
    );
  });

  test('is refused with TLS but neither client certificates nor tokens, and with tokens but without TLS', async () => {
    await assertRefused(
      { tls: serverTls(), auth: {} },
      /refusing to listen on 0\.0\.0\.0, off loopback, with TLS but without client certificates \(tls\.clientCa\) or tokens/,
    );
    await assertRefused({ auth: { tokens: [aToken] } }, /refusing to listen on 0\.0\.0\.0, off loopback, with tokens but without TLS/);
  });

  test('is refused when anonymous callers may read or write, even with client certificates', async () => {
    const clientCa = fileForRunner('ca.crt', pki.ca.cert);
    await assertRefused(
      { tls: { ...serverTls(), clientCa }, auth: { anonymous: 'read' } },
      /refusing to listen on 0\.0\.0\.0, off loopback, with auth\.anonymous: read \(every caller may read every task and its logs\)/,
    );
  });

  test('is allowed with tokens over TLS, with client certificates, and with insecure: true only with a warning', async () => {
    const tokens = await startTestRunner({ tls: serverTls(), auth: { tokens: [aToken] } }, { listenHost: '0.0.0.0', tls: true });
    assert.equal((await httpsCall(tokens.baseUrl, '/v1/', { ca: pki.ca.cert, token: 'x' })).status, 200);
    await tokens.stop();
    const certificates = await startTestRunner(
      { tls: { ...serverTls(), clientCa: fileForRunner('ca.crt', pki.ca.cert) }, auth: {} },
      { listenHost: '0.0.0.0', tls: true },
    );
    assert.equal((await httpsCall(certificates.baseUrl, '/v1/', { ca: pki.ca.cert, identity: pki.client })).status, 200);
    await certificates.stop();
    const open = await startTestRunner({ insecure: true, auth: { tokens: [aToken] } }, { listenHost: '0.0.0.0' });
    assert.equal((await withToken(open.baseUrl, 'x')('GET', '/v1/')).status, 200);
    assert.match(await open.journal(), /INSECURE: listening off loopback with tokens but without TLS/);
    await open.stop();
  });
});

describe('systemctl reload', () => {
  const pki = testPki();
  const [tokenA, tokenB, tokenC] = ['reload-token-a-0123456789', 'reload-token-b-0123456789', 'reload-token-c-0123456789'];
  const entry = (name: string, token: string) => ({ name, sha256: sha256(token), scope: 'write' });
  let runner: RunnerService;
  let files: { cert: string; key: string; tokens: string };
  const inside = (path: string) => `${runner.systemd.root}${path}`;
  const call = (token: string) => httpsCall(runner.baseUrl, '/v1/tasks', { ca: pki.ca.cert, token });
  /** The config the runner started with, with `changes` on top. */
  const writeConfig = (changes: Record<string, unknown> = {}) => {
    runner.writeConfig({
      machines: TEST_MACHINES,
      tls: { cert: files.cert, key: files.key },
      auth: { tokens: [], tokenFile: files.tokens },
      ...changes,
    });
  };
  const writeTokens = (tokens: unknown[]) => writeFileSync(inside(files.tokens), stringify(tokens));
  const reload = () => runner.systemd.systemctl('reload', runner.unit);
  const mainPid = async () => (await runner.systemd.show(runner.unit, ['MainPID']))['MainPID'];

  // Off loopback with TLS and tokens: guarded only while a token is left.
  before(async () => {
    files = {
      cert: fileForRunner('server.crt', pki.server.cert),
      key: fileForRunner('server.key', pki.server.key),
      tokens: fileForRunner('tokens.yaml', stringify([entry('a', tokenA)])),
    };
    runner = await startTestRunner(
      { tls: { cert: files.cert, key: files.key }, auth: { tokens: [], tokenFile: files.tokens } },
      { listenHost: '0.0.0.0', tls: true },
    );
  });
  after(async () => {
    await (runner as RunnerService | undefined)?.stop();
  });

  test('rotates a token: once systemctl reload has returned, the old one is refused and the new one works', async () => {
    writeTokens([entry('a', tokenA)]);
    writeConfig();
    assert.equal((await reload()).code, 0);
    assert.equal((await call(tokenA)).status, 200);
    const pid = await mainPid();
    writeTokens([entry('b', tokenB)]);
    const reloaded = await reload();
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.equal((await call(tokenA)).status, 401);
    assert.equal((await call(tokenB)).status, 200);
    assert.equal(await mainPid(), pid, 'not restarted');
    assert.match(await runner.journal(), /config reloaded: 1 token, the TLS certificate, key and CA read again/);
  });

  test('rotates the certificate: new connections are served with the new one, without a restart', async () => {
    writeTokens([entry('a', tokenA)]);
    writeConfig();
    assert.equal((await reload()).code, 0);
    writeFileSync(inside(files.cert), pki.server.cert);
    writeFileSync(inside(files.key), pki.server.key);
    assert.equal((await reload()).code, 0);
    assert.equal((await call(tokenA)).fingerprint, fingerprintOf(pki.server.cert));
    const pid = await mainPid();
    writeFileSync(inside(files.cert), pki.rotatedServer.cert);
    writeFileSync(inside(files.key), pki.rotatedServer.key);
    const reloaded = await reload();
    assert.equal(reloaded.code, 0, reloaded.stderr);
    const after = await call(tokenA);
    assert.equal(after.status, 200);
    assert.equal(after.fingerprint, fingerprintOf(pki.rotatedServer.cert));
    assert.equal(await mainPid(), pid, 'not restarted');
  });

  test('a change it cannot apply fails systemctl reload, is logged, and leaves the whole old config in force', async () => {
    writeTokens([entry('a', tokenA)]);
    writeConfig();
    assert.equal((await reload()).code, 0);
    const pid = await mainPid();
    const refusals: [string, () => void, RegExp][] = [
      [
        'a restart-only setting (with a new token)',
        () => writeConfig({ limits: { maxActiveTasks: 7 }, auth: { tokens: [entry('c', tokenC)], tokenFile: files.tokens } }),
        /limits cannot change without a restart/,
      ],
      ['a token file that is not YAML', () => writeFileSync(inside(files.tokens), '- name: [broken'), /auth\.tokenFile: cannot read/],
      [
        'no token left: TLS alone off loopback',
        () => writeTokens([]),
        /reload: refusing to listen on 0\.0\.0\.0, off loopback, with TLS but without client certificates/,
      ],
      [
        'a certificate that cannot be read',
        () => writeConfig({ tls: { cert: '/nonexistent/server.crt', key: files.key } }),
        /tls\.cert: cannot read \/nonexistent\/server\.crt/,
      ],
      ['a config that is not valid', () => writeConfig({ limits: { maxLogStreams: 0 } }), /limits\.maxLogStreams: Too small/],
    ];
    for (const [what, change, reason] of refusals) {
      change();
      const refused = await reload();
      assert.notEqual(refused.code, 0, `${what}: systemctl reload must fail`);
      const journal = await eventually(
        `the refusal of ${what}`,
        () => runner.journal(),
        (text) => reason.test(text),
      );
      assert.match(journal, /config reload refused, the running config is kept/);
      assert.equal((await call(tokenA)).status, 200, `${what}: the old token still works`);
      assert.equal((await call(tokenC)).status, 401, `${what}: nothing of the new config applies`);
      writeTokens([entry('a', tokenA)]);
      writeConfig();
    }
    const refusedEntries = (await runner.journalEntries()).filter((e) => e['MESSAGE']?.startsWith('config reload refused'));
    assert.ok(refusedEntries.length >= refusals.length);
    assert.ok(
      refusedEntries.every((e) => e['PRIORITY'] === '3'),
      'logged as errors',
    );
    assert.equal(await mainPid(), pid, 'not restarted');
    assert.equal((await runner.systemd.show(runner.unit, ['ActiveState']))['ActiveState'], 'active');
    assert.equal((await reload()).code, 0, 'the restored config reloads');
  });
});

describe('systemctl reload with mutual TLS', () => {
  const pki = testPki();
  let runner: RunnerService | undefined;
  after(async () => {
    await runner?.stop();
  });

  test('rotates the client CA: clients of the old CA can no longer connect, clients of the new one can', async () => {
    const clientCa = fileForRunner('ca.crt', pki.ca.cert);
    runner = await startTestRunner(
      { tls: { cert: fileForRunner('server.crt', pki.server.cert), key: fileForRunner('server.key', pki.server.key), clientCa } },
      { tls: true },
    );
    assert.equal((await httpsCall(runner.baseUrl, '/v1/tasks', { ca: pki.ca.cert, identity: pki.client })).status, 200);
    await assert.rejects(httpsCall(runner.baseUrl, '/v1/tasks', { ca: pki.ca.cert, identity: pki.foreignClient }));
    writeFileSync(`${runner.systemd.root}${clientCa}`, pki.foreignCa.cert);
    const reloaded = await runner.systemd.systemctl('reload', runner.unit);
    assert.equal(reloaded.code, 0, reloaded.stderr);
    await assert.rejects(httpsCall(runner.baseUrl, '/v1/tasks', { ca: pki.ca.cert, identity: pki.client }), 'the old CA no longer counts');
    assert.equal((await httpsCall(runner.baseUrl, '/v1/tasks', { ca: pki.ca.cert, identity: pki.foreignClient })).status, 200);
  });
});

describe('Unix socket and socket activation', () => {
  function overSocket(socketPath: string, path: string): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath, path }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('the runner also listens on a Unix socket with the configured file mode', async () => {
    const path = `/run/tessia-test/api-${Date.now()}.sock`;
    const runner = await startTestRunner({ unixSocket: { path, mode: '0600' } });
    try {
      const stat = statSync(`${runner.systemd.root}${path}`);
      assert.ok(stat.isSocket());
      assert.equal(stat.mode & 0o777, 0o600);
      const reply = await overSocket(`${runner.systemd.root}${path}`, '/v1/');
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body, { success: true });
    } finally {
      await runner.stop();
    }
  });

  function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createTcpServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
  }

  /**
   * The runner as a socket-activated service of its own, on the socket systemd listens on
   * (`listenStream`: HOST:PORT or a path), with `listen` for its own TCP listener.
   */
  async function activated(name: string, listenStream: string, listen = '127.0.0.1:1') {
    const systemd = PrivateSystemd.fromEnvironment();
    const started = await systemd.run([
      'systemd-run',
      `--unit=${name}`,
      `--socket-property=ListenStream=${listenStream}`,
      '--property=Type=notify',
      '--property=NotifyAccess=all',
      `--working-directory=${APP_DIR_INSIDE}`,
      '--',
      '/usr/bin/node',
      `${APP_DIR_INSIDE}/dist/cli/main.js`,
      'serve',
      '--listen',
      listen,
      '--state-dir',
      `/run/tessia-test/${name}/state`,
    ]);
    assert.equal(started.code, 0, started.stderr);
    return {
      systemd,
      journal: async () => (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', `${name}.service`])).stdout,
      stop: () => systemd.systemctl('stop', `${name}.socket`, `${name}.service`),
    };
  }

  test('a TCP socket systemd passes is checked like listen: off loopback without a guard the runner refuses to start', async () => {
    const name = `tessia-test-activated-open-${Date.now()}`;
    const port = await freePort();
    const service = await activated(name, `0.0.0.0:${port}`);
    try {
      // The first connection starts the service, which refuses the socket.
      await fetch(`http://127.0.0.1:${port}/v1/tasks`).catch(() => undefined);
      const journal = await eventually(
        'the refusal',
        () => service.journal(),
        (text) => text.includes('refusing to listen'),
      );
      assert.match(journal, /socket activation: refusing to listen on 0\.0\.0\.0, off loopback, without TLS or tokens/);
      assert.notEqual((await service.systemd.show(`${name}.service`, ['ActiveState']))['ActiveState'], 'active');
      assert.doesNotMatch(journal, /using the sockets systemd passed/);
    } finally {
      await service.stop();
      await service.systemd.systemctl('reset-failed', `${name}.service`, `${name}.socket`);
    }
  });

  test('a TCP socket on loopback that systemd passes is served, and `listen` is then not used', async () => {
    const name = `tessia-test-activated-tcp-${Date.now()}`;
    const port = await freePort();
    const service = await activated(name, `127.0.0.1:${port}`);
    try {
      const reply = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(reply.status, 200);
      // Anonymous callers may do nothing by default, on a passed TCP socket as on `listen`.
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/`)).status, 401);
      assert.match(await service.journal(), /using the sockets systemd passed \(socket activation\)/);
    } finally {
      await service.stop();
    }
  });

  test('under socket activation it serves on the Unix socket systemd passes (started by the first connection), and on `listen`', async () => {
    const systemd = PrivateSystemd.fromEnvironment();
    const name = `tessia-test-activated-${Date.now()}`;
    const path = `/run/tessia-test/${name}.sock`;
    const port = await freePort();
    const service = await activated(name, path, `127.0.0.1:${port}`);
    try {
      assert.notEqual((await systemd.show(`${name}.service`, ['ActiveState']))['ActiveState'], 'active', 'not started before a connection');
      // A caller on the Unix socket may do everything without a token (auth.unixSocket: write).
      const reply = await overSocket(`${systemd.root}${path}`, '/v1/tasks');
      assert.equal(reply.status, 200);
      assert.equal((await systemd.show(`${name}.service`, ['ActiveState']))['ActiveState'], 'active');
      // Only a Unix socket passed: the runner listens on `listen` too, where anonymous callers may do nothing.
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/tasks`)).status, 401);
      assert.match(await service.journal(), /using the sockets systemd passed \(socket activation\)/);
    } finally {
      await service.stop();
    }
  });
});
