/**
 * A full disk under the state directory (a 4 MiB tmpfs mounted there): starts answer 503
 * STORE_UNWRITABLE and leave no record and no unit, running tasks stay tracked, a task that ends
 * meanwhile keeps its unit until its real result is recorded, and the runner recovers by itself
 * once space returns — no restart. The store is whole afterwards (integrity_check, one row per task,
 * every event of a task that exists).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { client, type Api } from '../../src/embedded/api-client.js';
import { eventually } from '../../src/embedded/eventually.js';
import { APP_DIR_INSIDE } from '../../src/embedded/private-systemd.js';
import type { RunnerService } from '../../src/embedded/runner-service.js';
import { cleanUp, startTask, unitsOfTasks, waitForCollected, waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';
import { FAULT_FILLER, fillUntilFull } from '../harness/fill-disk.js';
import { TEST_MACHINES, startTestRunner, startWithFault } from '../harness/test-runner.js';

const RELEASE = `/run/tessia-test/full-disk-release-${randomBytes(4).toString('hex')}`;
const MACHINES = {
  ...TEST_MACHINES,
  // Machines of this file alone: their units are told apart from other suites' by TESSIA_MACHINE.
  'full-disk-echo': { builtin: 'echo', limits: { stopGraceSec: 2 } },
  // Runs until the test creates RELEASE, then exits 5.
  'full-disk-short': { exec: ['/bin/sh', '-c', `echo waiting; while [ ! -e ${RELEASE} ]; do sleep 0.1; done; echo released; exit 5`] },
};
const FILLER = 'filler';

describe('a full disk under the state directory', () => {
  let runner: RunnerService;
  let api: Api;
  const started = new Set<string>();
  const hostPath = (path: string) => `${runner.systemd.root}${path}`;

  before(async () => {
    runner = await startTestRunner({ machines: MACHINES });
    await runner.stop();
    const mounted = await runner.systemd.run(['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0750', 'tessia-full-disk', runner.stateDir]);
    assert.equal(mounted.code, 0, mounted.stderr);
    await runner.start();
    api = client(runner.baseUrl);
  });

  after(async () => {
    // Undefined when before() failed.
    if ((runner as RunnerService | undefined) === undefined) return;
    for (const name of [FILLER, FAULT_FILLER]) rmSync(hostPath(`${runner.stateDir}/${name}`), { force: true });
    rmSync(hostPath(RELEASE), { force: true });
    await cleanUp(runner, api, started);
    await runner.stop();
    await runner.systemd.run(['umount', runner.stateDir]);
  });

  /** Writes FILLER until the tmpfs has not a byte left. */
  const fill = () => fillUntilFull(hostPath(`${runner.stateDir}/${FILLER}`));

  /** The units of a machine of this file, as systemd has them (loaded, in any state). */
  async function unitsOfMachine(machine: string): Promise<string[]> {
    const units: string[] = [];
    for (const unit of await unitsOfTasks(runner)) {
      const { Environment: environment = '' } = await runner.systemd.show(unit, ['Environment']);
      if (environment.split(' ').includes(`TESSIA_MACHINE=${machine}`)) units.push(unit);
    }
    return units.sort();
  }

  /** The store as SQLite sees it, read inside the private system by a connection of its own. */
  async function storeFacts(): Promise<{ integrity: string; tasks: string[]; events: [string, string][] }> {
    const script = `const db = require('${APP_DIR_INSIDE}/node_modules/better-sqlite3')('${runner.stateDir}/tasks.sqlite3', { readonly: true });
      console.log(JSON.stringify({
        integrity: db.pragma('integrity_check', { simple: true }),
        tasks: db.prepare('SELECT task_id FROM tasks ORDER BY seq').pluck().all(),
        events: db.prepare('SELECT task_id, state FROM events ORDER BY id').raw().all(),
      }));`;
    const result = await runner.systemd.run(['/usr/bin/node', '-e', script]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  }

  async function readiness(): Promise<{ status: number; body: { checks: Record<string, boolean> } }> {
    const response = await fetch(`${runner.baseUrl}/readyz`);
    return { status: response.status, body: (await response.json()) as { checks: Record<string, boolean> } };
  }

  async function metric(name: string): Promise<number> {
    const families = parsePrometheusTextFormat(await (await fetch(`${runner.baseUrl}/metrics`)).text());
    const family = families.find((each) => each.name === name);
    assert.ok(family, `${name} is exported`);
    return Number(family.metrics[0]?.value);
  }

  async function start(machine: string, parameters: unknown) {
    const task = await startTask(api, machine, parameters);
    started.add(task.taskId);
    return task;
  }

  const linesOfRunner = async (text: string) => (await runner.journal()).split('\n').filter((line) => line.includes(text)).length;

  test('refuses starts with 503 and no record or unit, keeps tasks tracked, records an end it missed, and recovers by itself', async (t) => {
    const long = await start('full-disk-echo', ['echo long', 'sleep 120']);
    const short = await start('full-disk-short', null);
    await waitForJournalLine(runner, short.taskId, 'waiting');
    const listed = await api.getAll('/v1/tasks');
    assert.equal(listed.length, 2);
    const warningsBefore = await linesOfRunner('no space left for the task store');
    assert.equal(await metric('tessia_store_writable'), 1);

    fill();
    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await api.post('/v1/tasks', { machine: 'full-disk-echo', parameters: ['echo never started'] });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'STORE_UNWRITABLE');
      assert.ok(
        refused.body.detail.startsWith(`task not started: no space left for the task store under ${runner.stateDir} (SQLITE_FULL: `),
        refused.body.detail,
      );
      assert.equal(refused.headers.get('retry-after'), '5');
    }
    // No unit was started for them, and no record was made: the list is as it was.
    assert.deepEqual(await unitsOfMachine('full-disk-echo'), [long.unit]);
    assert.deepEqual(await api.getAll('/v1/tasks'), listed);
    // Not ready for new work; alive, and the bus is fine.
    const notReady = await readiness();
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body.checks, { dbus: true, store: false });
    assert.equal((await fetch(`${runner.baseUrl}/healthz`)).status, 200);
    assert.equal(await metric('tessia_store_writable'), 0);
    assert.ok((await metric('tessia_store_write_failures_total')) >= 3);
    // A stop whose intent cannot be recorded is not sent either.
    const stop = await api.post(`/v1/tasks/${long.taskId}/stop`);
    assert.equal(stop.status, 503);
    assert.equal(stop.body.code, 'STORE_UNWRITABLE');
    assert.match(stop.body.detail, new RegExp(`^task ${long.taskId} not stopped: no space left`));
    assert.deepEqual(await runner.systemd.show(long.unit, ['ActiveState', 'SubState']), { ActiveState: 'active', SubState: 'running' });
    // So is a DELETE: the task stays listed, and runs.
    const deleted = await api.delete(`/v1/tasks/${long.taskId}`);
    assert.equal(deleted.status, 503);
    assert.match(deleted.body.detail, new RegExp(`^task ${long.taskId} not deleted: no space left`));
    assert.deepEqual(await api.getAll('/v1/tasks'), listed);
    assert.equal((await runner.systemd.show(long.unit, ['ActiveState']))['ActiveState'], 'active');

    // The short task ends while the disk is full: systemd keeps its unit and result until they are recorded.
    writeFileSync(hostPath(RELEASE), '');
    await eventually(
      'the short task ending',
      async () => {
        const unit = await runner.systemd.show(short.unit, ['LoadState', 'ActiveState', 'SubState', 'ExecMainStatus']);
        return `${unit['LoadState']}/${unit['ActiveState']}/${unit['SubState']}/${unit['ExecMainStatus']}`;
      },
      (state) => state === 'loaded/failed/failed/5',
    );
    // Time for the runner to have read the unit (and failed to record it).
    await sleep(1500);
    assert.equal((await api.get(`/v1/tasks/${short.taskId}`)).body.state, 'running', 'shown as last recorded');
    assert.equal((await api.get(`/v1/tasks/${long.taskId}`)).body.state, 'running');
    assert.deepEqual(await runner.systemd.show(short.unit, ['LoadState', 'ActiveState']), { LoadState: 'loaded', ActiveState: 'failed' });
    // One warning for the episode, not one per refused write or request.
    assert.equal((await linesOfRunner('no space left for the task store')) - warningsBefore, 1);
    t.diagnostic((await runner.journal()).split('\n').find((line) => line.includes('no space left for the task store')) ?? '');

    // Space returns: with no request, the runner records what it missed and is ready again.
    const recoveredBefore = await linesOfRunner('the task store takes writes again');
    rmSync(hostPath(`${runner.stateDir}/${FILLER}`));
    const freedAt = performance.now();
    const ended = await waitForState(api, short.taskId, ['exited', 'lost'], 45_000);
    t.diagnostic(`the missed end recorded ${Math.round(performance.now() - freedAt)} ms after space returned`);
    assert.equal(ended.state, 'exited');
    assert.equal(ended.exitCode, 5);
    assert.equal(ended.result, 'exit-code');
    await waitForCollected(runner, short.unit);
    await eventually(
      'ready again',
      async () => (await readiness()).status,
      (status) => status === 200,
    );
    assert.equal(await metric('tessia_store_writable'), 1);
    assert.equal((await linesOfRunner('the task store takes writes again')) - recoveredBefore, 1);

    // The next start works, no restart needed.
    const next = await start('full-disk-echo', ['echo started once space returned', 'sleep 120']);
    assert.equal(next.state, 'running');
    assert.equal((await api.get(`/v1/tasks/${long.taskId}`)).body.state, 'running');

    // Nothing half-written: the store is whole, one row per task the API knows, and each task's
    // events are exactly its life (no "created" of a refused start, no event without its task).
    const facts = await storeFacts();
    assert.equal(facts.integrity, 'ok');
    assert.deepEqual(facts.tasks, [long.taskId, short.taskId, next.taskId]);
    const lives = new Map<string, string[]>();
    for (const [taskId, state] of facts.events) lives.set(taskId, [...(lives.get(taskId) ?? []), state]);
    assert.deepEqual(Object.fromEntries(lives), {
      [long.taskId]: ['created', 'running'],
      [short.taskId]: ['created', 'running', 'exited'],
      [next.taskId]: ['created', 'running'],
    });
  });

  test('a task whose unit started as the disk filled runs on, answered as created, and its record catches up', async () => {
    // Fills the tmpfs right after each start's record: the unit starts, its "running" cannot be recorded.
    await runner.stop();
    await startWithFault(runner, 'fill-after-record');
    try {
      const reply = await api.post('/v1/tasks', {
        machine: 'full-disk-echo',
        parameters: ['echo started as the disk filled', 'sleep 120'],
      });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      const { taskId, unit } = reply.body as { taskId: string; unit: string };
      started.add(taskId);
      // It started (no need to start it again), and it is its task's unit, followed: no orphan.
      assert.equal(reply.body.state, 'created');
      assert.deepEqual(await runner.systemd.show(unit, ['ActiveState', 'SubState']), { ActiveState: 'active', SubState: 'running' });
      await waitForJournalLine(runner, taskId, 'started as the disk filled');
      assert.equal((await api.get(`/v1/tasks/${taskId}`)).body.state, 'created');
      assert.equal((await readiness()).status, 503);

      rmSync(hostPath(`${runner.stateDir}/${FAULT_FILLER}`));
      const running = await waitForState(api, taskId, ['running'], 45_000);
      assert.match(running.invocationId, /^[0-9a-f]{32}$/);
      assert.equal(running.invocationId, (await runner.systemd.show(unit, ['InvocationID']))['InvocationID']);
      assert.notEqual(running.startedAt, null);
      assert.equal((await storeFacts()).integrity, 'ok');
    } finally {
      rmSync(hostPath(`${runner.stateDir}/${FAULT_FILLER}`), { force: true });
      await runner.stop();
      await runner.start();
    }
  });
});
