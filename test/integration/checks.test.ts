/**
 * A machine's check of a request's parameters before anything starts (issue 15): run in a unit of
 * its own with the machine's sandbox, its verdict the client's answer, and nothing created unless it
 * passes — whatever the check does (rejects, crashes, hangs, floods its stderr).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ndjson, readAll } from '../../src/embedded/api-streams.js';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerSuite } from '../harness/suite.js';

describe("an executable machine's check", () => {
  const suite = runnerSuite();

  async function checkUnits(): Promise<string> {
    return (await suite.runner.systemd.systemctl('list-units', '--all', '--plain', '--no-legend', 'tessia-check-*')).stdout.trim();
  }

  /** What the start left behind: tasks, events, check units, files beside the parameters. */
  async function footprint() {
    return {
      tasks: (await suite.api.getAll('/v1/tasks')).length,
      events: ndjson((await readAll(`${suite.runner.baseUrl}/v1/events?follow=false`)).body).filter(
        (event: { type: string }) => event.type === 'task',
      ),
      checkUnits: await checkUnits(),
      handoff: readdirSync(`${suite.runner.systemd.root}${suite.runner.parametersDir}`),
    };
  }

  async function starterJournal(): Promise<string> {
    return (await suite.runner.systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', suite.runner.starter?.unit ?? ''])).stdout;
  }

  async function metric(name: string, labels: Record<string, string>): Promise<number> {
    const families = parsePrometheusTextFormat(await (await fetch(`${suite.runner.baseUrl}/metrics`)).text());
    const sample = families
      .find((each) => each.name === name)
      ?.metrics.find((each) => Object.entries(labels).every(([key, value]) => each.labels?.[key] === value));
    return Number(sample?.value ?? 0);
  }

  test('valid parameters start the task, which gets them on its stdin as without a check', async () => {
    const task = await suite.start('checked', 'ok then run');
    await waitForState(suite.api, task.taskId, ['exited']);
    const logs = await readAll(`${suite.runner.baseUrl}/v1/tasks/${task.taskId}/logs`);
    assert.match(logs.body, /ran with \\?"ok then run\\?"/);
    assert.equal(await checkUnits(), '', 'the check unit is gone');
  });

  test('the same request twice at once with one Idempotency-Key: one task, whichever check ends first', async () => {
    const send = () =>
      fetch(`${suite.runner.baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'checked-twice' },
        body: JSON.stringify({ machine: 'checked', parameters: 'ok twice' }),
      }).then(async (reply) => ({ status: reply.status, body: (await reply.json()) as { taskId: string } }));
    const [first, second] = await Promise.all([send(), send()]);
    assert.deepEqual([first.status, second.status].sort(), [200, 201]);
    assert.equal(first.body.taskId, second.body.taskId);
    suite.started.add(first.body.taskId);
  });

  test('a rejection is 400 INVALID_PARAMETERS with the last line of its stderr, without the parameters, and creates nothing', async () => {
    const before = await footprint();
    const invalid = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'frobnicate s3cr3t-Value' });
    assert.equal(invalid.status, 400, JSON.stringify(invalid.body));
    assert.equal(invalid.body.code, 'INVALID_PARAMETERS');
    assert.equal(invalid.body.detail, 'unknown target "… …-…"', 'the last line, every word of the parameters replaced');
    assert.deepEqual(await footprint(), before, 'no task, no event, no unit, no file left');
    assert.doesNotMatch(await suite.runner.journal(), /s3cr3t|frobnicate/, "the parameters are not in the runner's log");
    assert.ok((await metric('tessia_parameter_checks_total', { outcome: 'invalid' })) >= 1);
  });

  test('a check that crashes is 500 CHECK_FAILED and one that cannot run its program is too, each with a clear detail', async () => {
    const before = await footprint();
    const crashed = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'crash' });
    assert.equal(crashed.status, 500, JSON.stringify(crashed.body));
    assert.equal(crashed.body.code, 'CHECK_FAILED');
    assert.match(crashed.body.detail, /^machine checked: the check was killed by signal 11/);
    const broken = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'broken' });
    assert.equal(broken.status, 500);
    assert.equal(broken.body.detail, 'machine checked: the check could not run (exit status 127): cannot load helper module');
    assert.deepEqual(await footprint(), before);
    assert.equal((await suite.api.get('/v1/')).status, 200, 'the runner is healthy');
  });

  test('a check that hangs is stopped at limits.checkTimeoutSec: 503 CHECK_TIMEOUT with Retry-After, nothing created', async () => {
    const before = await footprint();
    const began = Date.now();
    const hung = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'hang' });
    const tookMs = Date.now() - began;
    assert.equal(hung.status, 503, JSON.stringify(hung.body));
    assert.equal(hung.body.code, 'CHECK_TIMEOUT');
    assert.match(hung.body.detail, /^machine checked: the check did not end in time \(limits\.checkTimeoutSec: 1 s\)$/);
    assert.equal(hung.headers.get('retry-after'), '5');
    assert.ok(tookMs >= 1000 && tookMs < 10_000, `answered after ${tookMs} ms (timeout 1 s, then SIGTERM)`);
    assert.deepEqual(await footprint(), before);
  });

  test("checks under way count against the machine's limits.maxActive: a third request at once is 429 MACHINE_BUSY", async () => {
    const before = await footprint();
    const hung = [1, 2].map(() => suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'hang' }));
    // Both checks are running (their units exist) before the third request.
    await eventually(
      'two check units',
      () => checkUnits(),
      (units) => units.split('\n').filter((line) => line.includes('tessia-check-')).length === 2,
    );
    const third = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'ok' });
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.body.code, 'MACHINE_BUSY');
    assert.deepEqual(
      (await Promise.all(hung)).map((reply) => reply.status),
      [503, 503],
    );
    assert.deepEqual(await footprint(), before);
    const task = await suite.start('checked', 'ok again');
    await waitForState(suite.api, task.taskId, ['exited']);
  });

  test('a check that floods its stderr is cut at 1 MiB (SIGXFSZ) and the runner reads only its end', async () => {
    const before = await footprint();
    const flooded = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'flood' });
    assert.equal(flooded.status, 500, JSON.stringify(flooded.body));
    assert.match(flooded.body.detail, /^machine checked: the check was killed by signal 25/);
    assert.ok(Buffer.byteLength(flooded.body.detail) < 1024, 'the detail is bounded');
    assert.deepEqual(await footprint(), before);
  });

  test('a starter killed during a check: the client gets 503, and the starter collects the orphaned check unit when it starts again', async () => {
    const starterUnit = suite.runner.starter?.unit ?? '';
    const hung = suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'hang' });
    await eventually(
      'the check unit',
      () => checkUnits(),
      (units) => units.includes('tessia-check-'),
    );
    await suite.runner.systemd.systemctl('kill', '--signal=SIGKILL', starterUnit);
    const lost = await hung;
    assert.equal(lost.status, 503, JSON.stringify(lost.body));
    assert.equal(lost.body.code, 'SYSTEMD_UNAVAILABLE');
    // Nobody collects it meanwhile: it ends at its timeout and stays, failed.
    await eventually(
      'the orphaned check ended',
      () => checkUnits(),
      (units) => units.includes(' failed '),
    );
    await suite.runner.stop();
    await suite.runner.start();
    await eventually(
      'the orphan collected by the restarted starter',
      () => checkUnits(),
      (units) => units === '',
    );
    assert.match(await starterJournal(), /collected the unit of a check no one waits for/);
    const task = await suite.start('checked', 'ok after the crash');
    await waitForState(suite.api, task.taskId, ['exited']);
  });

  test("the check runs as a dynamic user with no new privileges, and cannot read the runner's state", async () => {
    const shown = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: `whoami ${suite.runner.stateDir}` });
    assert.equal(shown.status, 400);
    const [, uid] = /uid=(\d+)/.exec(shown.body.detail) ?? [];
    assert.ok(Number(uid) >= 61184 && Number(uid) <= 65519, `a dynamic user: ${shown.body.detail}`);
    assert.match(shown.body.detail, /nonewprivs=1/);
    assert.match(shown.body.detail, /peek=denied/);
    const control = await suite.api.post('/v1/tasks', { machine: 'checked', parameters: 'whoami /usr' });
    assert.match(control.body.detail, /peek=readable/, 'the check does read what everyone may read');
  });
});
