/** Health, metrics and config reload, against the running service in the private systemd. */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { eventually } from '../../src/embedded/eventually.js';
import { TEST_MACHINES } from '../harness/test-runner.js';
import { followLines } from '../../src/embedded/api-streams.js';
import { skipUnlessNativeJournal } from '../harness/requirements.js';
import { runnerFields } from '../harness/runner-fields.js';
import { runnerSuite } from '../harness/suite.js';
import { waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';

describe('operability', () => {
  const suite = runnerSuite();

  async function metrics() {
    const response = await fetch(`${suite.runner.baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(await response.text());
    const value = (name: string, labels: Record<string, string> = {}) => {
      const family = families.find((each) => each.name === name);
      assert.ok(family, `${name} is exported`);
      const sample = family.metrics.find((each) => Object.entries(labels).every(([key, v]) => each.labels?.[key] === v));
      return Number(sample?.value ?? sample?.count ?? sample?.buckets?.['+Inf']);
    };
    return { families, value };
  }

  test('/healthz answers while the process lives; /readyz tells whether D-Bus and the store are usable', async () => {
    assert.deepEqual(await (await fetch(`${suite.runner.baseUrl}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${suite.runner.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { dbus: true, store: true } });
    await suite.runner.systemd.systemctl('stop', 'dbus.socket', 'dbus.service');
    try {
      const notReady = await eventually(
        'not ready without the bus',
        () => fetch(`${suite.runner.baseUrl}/readyz`),
        (r) => r.status === 503,
      );
      const body = (await notReady.json()) as { checks: Record<string, boolean> };
      assert.equal(body.checks.dbus, false);
      assert.equal(body.checks.store, true);
      assert.equal((await fetch(`${suite.runner.baseUrl}/healthz`)).status, 200, 'alive all the same');
    } finally {
      await suite.runner.systemd.systemctl('start', 'dbus.socket', 'dbus.service');
    }
    await eventually(
      'ready again',
      async () => (await fetch(`${suite.runner.baseUrl}/readyz`)).status,
      (status) => status === 200,
      30_000,
    );
  });

  test('/metrics is valid Prometheus text with task counts, starts, stops, start latency and streams', async () => {
    const before = await metrics();
    const startsBefore = before.value('tessia_task_starts_total');
    const task = await suite.start('echo', ['echo metrics', 'sleep 60']);
    const lines: string[] = [];
    const stream = followLines(`${suite.runner.baseUrl}/v1/tasks/${task.taskId}/logs?follow=true`, (line) => lines.push(line));
    await eventually(
      'the stream running',
      () => lines.length,
      (n) => n > 0,
    );
    const during = await metrics();
    assert.equal(during.value('tessia_task_starts_total'), startsBefore + 1);
    assert.ok(during.value('tessia_tasks', { state: 'running' }) >= 1);
    assert.ok(during.value('tessia_log_streams_active') >= 1);
    assert.ok(during.value('tessia_journal_readers') >= 1);
    assert.ok(during.value('tessia_task_start_duration_seconds') >= 1, 'the histogram counted the start');
    assert.equal(during.families.find((f) => f.name === 'tessia_task_start_duration_seconds')?.type, 'HISTOGRAM');
    await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
    await stream.done;
    await waitForState(suite.api, task.taskId, ['exited']);
    const after = await metrics();
    assert.equal(after.value('tessia_task_stops_total'), during.value('tessia_task_stops_total') + 1);
    assert.equal(after.value('tessia_log_streams_active'), 0);
    assert.ok(Number.isFinite(after.value('tessia_dbus_reconnects')));
  });

  test('/v1/openapi.json is a valid OpenAPI 3.1 document of every endpoint, from the validating schemas', async () => {
    const document = (await suite.api.get('/v1/openapi.json')).body;
    const result = await new Validator().validate(document);
    assert.deepEqual(result, { valid: true });
    assert.equal(document.openapi, '3.1.0');
    const schemaPaths = Object.keys((await suite.api.get('/v1/schema')).body).filter((path) => path.startsWith('/tasks'));
    assert.deepEqual(
      [...schemaPaths].sort(),
      [
        '/tasks',
        '/tasks/{taskId}',
        '/tasks/{taskId}/files',
        '/tasks/{taskId}/files/{path}',
        '/tasks/{taskId}/logs',
        '/tasks/{taskId}/stop',
      ],
      'the task endpoints of /v1/schema',
    );
    for (const path of schemaPaths) assert.ok(`/v1${path}` in document.paths, `${path} is described`);
    const logParameters = document.paths['/v1/tasks/{taskId}/logs'].get.parameters.map((p: { name: string }) => p.name);
    assert.deepEqual(logParameters.sort(), [
      'Last-Event-ID',
      'after',
      'fields',
      'follow',
      'format',
      'priority',
      'since',
      'tail',
      'taskId',
      'trusted',
      'until',
    ]);
    const body = document.paths['/v1/tasks'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required?.sort(), ['machine', 'parameters']);
    assert.equal(body.additionalProperties, false, 'the same strictness as the validation');
  });

  // Without unix-dgram the runner writes these fields as text: tested below, with the transport forced off.
  test(
    "the runner's own log is native journald entries: its lines about a task found by TESSIA_TASK_ID",
    { skip: skipUnlessNativeJournal("the runner's native journal entries") },
    async () => {
      const task = await suite.start('echo', ['echo logged']);
      await waitForState(suite.api, task.taskId, ['exited']);
      const byTask = await eventually(
        "the runner's lines about the task",
        async () =>
          (
            await suite.runner.systemd.run([
              'journalctl',
              '--no-pager',
              '-o',
              'json',
              '-u',
              suite.runner.unit,
              `TESSIA_TASK_ID=${task.taskId}`,
            ])
          ).stdout,
        (text) => text.includes('task exited'),
      );
      const entries = byTask
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, string>);
      // The wait found the text; that it is one entry of its own, not repeated, is checked here.
      assert.equal(entries.filter((entry) => entry['MESSAGE'] === 'task exited').length, 1, byTask);
      const exited = entries.find((entry) => entry['MESSAGE'] === 'task exited');
      assert.ok(exited, byTask);
      assert.equal(exited['PRIORITY'], '6');
      assert.equal(exited['SYSLOG_IDENTIFIER'], 'tessia-task-runner');
      assert.equal(exited['_TRANSPORT'], 'journal');
    },
  );

  test('a reload (SIGHUP) adds machines for new tasks, leaves running tasks alone, and refuses a bad config', async () => {
    const running = await suite.start('echo', ['echo before the reload', 'sleep 60']);
    assert.equal((await suite.api.post('/v1/tasks', { machine: 'late', parameters: [] })).status, 400);
    const machineNames = async () => ((await suite.api.get('/v1/machines')).body as { name: string }[]).map((machine) => machine.name);
    assert.deepEqual(await machineNames(), Object.keys(TEST_MACHINES), 'GET /v1/machines: the machines of the config, in its order');
    const configPath = `${suite.runner.systemd.root}${suite.runner.configPath}`;
    suite.runner.writeConfig({ machines: { ...TEST_MACHINES, late: { builtin: 'echo' } }, auth: { anonymous: 'write' } });
    await suite.runner.systemd.systemctl('kill', '--signal=SIGHUP', '--kill-whom=main', suite.runner.unit);
    const late = await eventually(
      'the new machine',
      () => suite.api.post('/v1/tasks', { machine: 'late', parameters: ['echo late'] }),
      (r) => r.status === 201,
    );
    suite.started.add(late.body.taskId);
    await waitForJournalLine(suite.runner, late.body.taskId, 'late');
    const machines = (await suite.api.get('/v1/machines')).body as Record<string, unknown>[];
    assert.deepEqual(machines.at(-1), { name: 'late', description: '', kind: 'builtin' }, 'the machines of the reloaded config');
    const anExec = machines.find((machine) => machine['kind'] === 'exec');
    assert.ok(anExec, 'the test config has an executable machine');
    assert.deepEqual(Object.keys(anExec).sort(), ['description', 'kind', 'name'], 'never its command, environment or sandbox');
    assert.equal((await suite.api.get(`/v1/tasks/${running.taskId}`)).body.state, 'running');

    writeFileSync(configPath, 'machines:\n  late:\n    builtin: nope\n');
    await suite.runner.systemd.systemctl('kill', '--signal=SIGHUP', '--kill-whom=main', suite.runner.unit);
    await eventually(
      'the refusal logged',
      () => suite.runner.journal(),
      (text) => text.includes('config reload refused'),
    );
    assert.match(await suite.runner.journal(), /machines\.late\.builtin/);
    const still = await suite.api.post('/v1/tasks', { machine: 'late', parameters: ['echo still'] });
    assert.equal(still.status, 201, 'the running config is kept');
    suite.started.add(still.body.taskId);
    assert.equal((await suite.runner.systemd.show(suite.runner.unit, ['ActiveState']))['ActiveState'], 'active');
  });
});

describe('config.d drop-ins', () => {
  const suite = runnerSuite();

  test('a drop-in beside the config adds a machine on reload, tasks of it start through the starter, and a bad one is refused by its name', async () => {
    const dropIns = `${suite.runner.systemd.root}${dirname(suite.runner.configPath)}/config.d`;
    mkdirSync(dropIns, { recursive: true });
    try {
      writeFileSync(`${dropIns}/50-site.yaml`, 'machines:\n  from-drop-in:\n    exec: [/bin/echo, from the drop-in]\n');
      await suite.runner.systemd.systemctl('kill', '--signal=SIGHUP', '--kill-whom=main', suite.runner.unit);
      const started = await eventually(
        'the machine of the drop-in',
        () => suite.api.post('/v1/tasks', { machine: 'from-drop-in', parameters: null }),
        (reply) => reply.status === 201,
      );
      suite.started.add(started.body.taskId);
      await waitForJournalLine(suite.runner, started.body.taskId, 'from the drop-in');

      writeFileSync(`${dropIns}/60-typo.yaml`, 'machines:\n  from-drop-in:\n    limits: { tasksMx: 3 }\n');
      await suite.runner.systemd.systemctl('kill', '--signal=SIGHUP', '--kill-whom=main', suite.runner.unit);
      const refusal = await eventually(
        'the refusal logged',
        () => suite.runner.journal(),
        (text) => text.includes('60-typo.yaml'),
      );
      assert.match(refusal, /machines\.from-drop-in\.limits: unknown key\(s\) "tasksMx" \(in \/.*\/config\.d\/60-typo\.yaml\)/);
      const still = await suite.api.post('/v1/tasks', { machine: 'from-drop-in', parameters: null });
      assert.equal(still.status, 201, 'the running config is kept');
      suite.started.add(still.body.taskId);
    } finally {
      rmSync(dropIns, { recursive: true, force: true });
    }
  });
});

describe('the runner stopping', () => {
  const suite = runnerSuite();

  test('writes its last line, after shutting down, before it exits', async () => {
    await suite.runner.restart();
    const messages = async () => (await suite.runner.journalEntries()).map((entry) => runnerFields(entry)['MESSAGE']);
    const said = await eventually('the last line of the stopped runner', messages, (all) => all.includes('stopped'));
    assert.equal(said.filter((message) => message === 'stopped').length, 1, said.join('\n'));
    assert.equal(said.filter((message) => message === 'shutting down (tasks keep running)').length, 1);
    assert.ok(said.indexOf('shutting down (tasks keep running)') < said.indexOf('stopped'));
  });
});

describe('the runner without the native journal transport', () => {
  const suite = runnerSuite();

  test('keeps priorities, and writes its fields as KEY=value text that journalctl --grep finds, audit included', async () => {
    await suite.runner.stop();
    await suite.runner.start({ TESSIA_LOG_TRANSPORT: 'stdout' });
    const task = await suite.start('echo', ['echo logged']);
    await waitForState(suite.api, task.taskId, ['exited']);
    const journal = (args: string[]) =>
      suite.runner.systemd.run(['journalctl', '--no-pager', '-o', 'json', '-u', suite.runner.unit, ...args]);
    const grepped = await eventually(
      "the runner's lines about the task, by text",
      async () =>
        (await journal(['--grep', `TESSIA_TASK_ID=${task.taskId}`])).stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line)),
      (entries: Record<string, string>[]) => entries.some((entry) => entry['MESSAGE']?.startsWith('task exited')),
    );
    const exited = grepped.filter((entry: Record<string, string>) => entry['MESSAGE']?.startsWith('task exited '));
    assert.equal(exited.length, 1, JSON.stringify(grepped));
    assert.equal(exited[0].PRIORITY, '6');
    assert.equal(exited[0]._TRANSPORT, 'stdout');
    assert.equal(exited[0].TESSIA_TASK_ID, undefined, 'no journal field of its own without the native transport');
    const audit = grepped.filter((entry: Record<string, string>) => (entry['MESSAGE'] ?? '').includes('TESSIA_AUDIT=task.start'));
    assert.equal(audit.length, 1, 'the audit line of the start');
    assert.match(audit[0].MESSAGE, /TESSIA_IDENTITY=anonymous/);
    assert.doesNotMatch(audit[0].MESSAGE, /logged/, 'never the parameters');
    const said = (await journal(['--grep', 'native journal transport'])).stdout;
    assert.match(said, /native journal transport is off .*: fields are written as KEY=value text/);
  });
});
