/**
 * docs/machines.md's examples — the countdown machine in shell, JavaScript and Python (a tessia-mesh
 * class) — run as the guide configures them: checked before a start, counted down to the end with
 * their entries and priorities, and stopped with their cleanup, each leaving result.json.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { APP_DIR_INSIDE, PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { ndjson, readAll } from '../../src/embedded/api-streams.js';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';
import { runnerSuite } from '../harness/suite.js';

const EXAMPLES = `${APP_DIR_INSIDE}/docs/examples`;
/**
 * Where the JavaScript example is deployed as the guide says, outside this package (inside it, Node
 * would resolve 'tessia-task-runner/sdk' to the package itself whatever the deployment).
 */
const DEPLOYED = '/run/tessia-test/machines';
const GRACE = { stopGraceSec: 10 };

/** Each example: its config, parameters for a run, invalid parameters and the reason they get. */
const EXAMPLE_MACHINES = {
  shell: {
    config: { exec: [`${EXAMPLES}/countdown.sh`], check: [`${EXAMPLES}/countdown.sh`, '--check'], limits: GRACE },
    parameters: (seconds: number) => seconds,
    invalid: [0, 1e20],
    reason: 'the countdown must last from 1 to 3600 seconds',
    // Priorities: info for the counting, notice for the end.
    end: { message: 'liftoff', priority: 5 },
  },
  javascript: {
    config: {
      exec: ['/usr/bin/node', `${DEPLOYED}/countdown.mjs`],
      check: ['/usr/bin/node', `${DEPLOYED}/countdown.mjs`, '--check'],
      limits: GRACE,
    },
    parameters: (seconds: number) => ({ from: seconds, message: 'we have liftoff' }),
    invalid: [{ from: 1.5 }],
    reason: '"from" must be a whole number of seconds from 1 to 3600',
    end: { message: 'we have liftoff', priority: 5 },
  },
  python: {
    config: { tessia: { class: 'countdown_machine:CountdownMachine', pythonPath: [EXAMPLES] }, limits: GRACE },
    parameters: (seconds: number) => ({ from: seconds, message: 'we have liftoff' }),
    invalid: [{ from: 2, colour: 'red' }],
    // "colour" names a key: the machine's vocabulary, kept (a value's words would be replaced).
    reason: 'ValueError: unknown parameters: colour',
    // print() is an info entry.
    end: { message: 'we have liftoff', priority: 6 },
  },
};

describe("the guide's example machines", () => {
  const machines = Object.fromEntries(Object.entries(EXAMPLE_MACHINES).map(([name, example]) => [name, example.config]));
  const suite = runnerSuite({ machines });
  before(() => {
    // docs/machines.md's deployment: the file, and the package linked into a node_modules beside it.
    const root = PrivateSystemd.fromEnvironment().root;
    mkdirSync(`${root}${DEPLOYED}/node_modules`, { recursive: true });
    copyFileSync(`${REPO_DIR}/docs/examples/countdown.mjs`, `${root}${DEPLOYED}/countdown.mjs`);
    rmSync(`${root}${DEPLOYED}/node_modules/tessia-task-runner`, { force: true });
    symlinkSync(APP_DIR_INSIDE, `${root}${DEPLOYED}/node_modules/tessia-task-runner`);
  });
  const entriesOf = async (taskId: string) =>
    ndjson((await readAll(`${suite.runner.baseUrl}/v1/tasks/${taskId}/logs`)).body).filter(
      (line) => line.type === 'entry' && line.source === 'task',
    ) as { message: string; priority: number }[];
  const resultOf = async (taskId: string) => (await suite.api.get(`/v1/tasks/${taskId}/files/result.json`)).body;

  for (const [name, example] of Object.entries(EXAMPLE_MACHINES)) {
    test(`${name}: counts down to its end, exit code 0, and leaves result.json`, async () => {
      const task = await suite.start(name, example.parameters(2));
      const ended = await waitForState(suite.api, task.taskId, ['exited']);
      assert.equal(ended.exitCode, 0, JSON.stringify(ended));
      await waitForJournalLine(suite.runner, task.taskId, example.end.message);
      const entries = (await entriesOf(task.taskId)).map(({ message, priority }) => ({ message, priority }));
      assert.deepEqual(entries, [
        { message: 'counting down from 2', priority: 6 },
        { message: 'T-minus 2', priority: 6 },
        { message: 'T-minus 1', priority: 6 },
        example.end,
      ]);
      assert.deepEqual(await resultOf(task.taskId), { completed: true, left: 0 });
    });

    test(`${name}: its check refuses bad parameters with its reason, and nothing starts`, async () => {
      const before = (await suite.api.getAll('/v1/tasks')).length;
      for (const parameters of example.invalid) {
        const refused = await suite.api.post('/v1/tasks', { machine: name, parameters });
        assert.equal(refused.status, 400, JSON.stringify(refused.body));
        assert.equal(refused.body.detail, example.reason);
      }
      assert.equal((await suite.api.getAll('/v1/tasks')).length, before);
    });

    test(`${name}: a stop lets it clean up: exit code -1, "stopped with … left", result.json says so`, async () => {
      const task = await suite.start(name, example.parameters(60));
      await waitForJournalLine(suite.runner, task.taskId, 'T-minus 59');
      await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
      const ended = await waitForState(suite.api, task.taskId, ['exited']);
      assert.equal(ended.exitCode, -1);
      const stopped = await eventually(
        'the cleanup line',
        () => entriesOf(task.taskId),
        (entries) => entries.some((entry) => /^stopped with \d+ seconds left: cleaning up$/.test(entry.message)),
      );
      assert.equal(stopped.find((entry) => entry.message.startsWith('stopped with'))?.priority, 4);
      const result = await resultOf(task.taskId);
      assert.equal(result.completed, false);
      assert.ok(result.left > 0 && result.left <= 59, JSON.stringify(result));
    });
  }
});
