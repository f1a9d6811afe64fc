/**
 * tessia-mesh's own machines (issue 15), run by the tessia host in task units of the real systemd:
 * its EchoMachine against the built-in echo on the scripts of tessia-mesh's sample and tests (the
 * same entries, priorities and exit codes, but where the original knowingly differs), its
 * PowerManagerMachine without zhmcclient (a clear 500, nothing created), and the host's two journal
 * transports (python3-systemd's handler, `<N>` lines without it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { APP_DIR_INSIDE, PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { ndjson, readAll } from '../../src/embedded/api-streams.js';
import { eventually } from '../../src/embedded/eventually.js';
import { waitForJournalLine, waitForState } from '../../src/embedded/runner-tasks.js';
import { skipUnlessPython } from '../harness/requirements.js';
import { runnerSuite } from '../harness/suite.js';

const FIXTURE = `${APP_DIR_INSIDE}/test/fixtures/tessia-mesh/src`;
const PROBES = `${APP_DIR_INSIDE}/test/fixtures/python-machines`;
/** A virtualenv without the system's site packages (no python3-systemd): the host writes `<N>` lines. */
const PLAIN_VENV = '/run/tessia-test/venv-plain';
const ECHO_CLASS = 'task_runner.machines.echo.machine:EchoMachine';
const SCRIPTS = JSON.parse(readFileSync(`${REPO_DIR}/test/fixtures/tessia-mesh/echo-scripts.json`, 'utf8')) as Record<
  string,
  { source: string; parameters: unknown }
>;
const GRACE = { stopGraceSec: 10 };

interface Entry {
  message: string;
  priority: number;
  fields: Record<string, string>;
}

describe(
  "tessia-mesh's machines",
  {
    skip: skipUnlessPython(
      ['jsonschema'],
      "tessia-mesh's task.py (the fixture) needs python3-jsonschema: apt-get install python3-jsonschema",
    ),
  },
  () => {
    const suite = runnerSuite({
      machines: {
        echo: { builtin: 'echo', limits: GRACE },
        'tessia-echo': { tessia: { class: ECHO_CLASS, pythonPath: [FIXTURE] }, limits: GRACE },
        // Exactly as issue 15 writes it (its pythonPath: the fixture), on a host without zhmcclient.
        powerman: { tessia: { class: 'task_runner.machines.powerman.machine:PowerManagerMachine', pythonPath: [FIXTURE] } },
        'logs-journal': { tessia: { class: 'host_probes:Logs', pythonPath: [PROBES] } },
        'logs-plain': { tessia: { class: 'host_probes:Logs', pythonPath: [PROBES], python: `${PLAIN_VENV}/bin/python3` } },
      },
    });
    before(() => {
      const systemd = PrivateSystemd.fromEnvironment();
      const made = spawnSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', `${systemd.root}${PLAIN_VENV}`], { encoding: 'utf8' });
      assert.equal(made.status, 0, made.stderr);
    });

    const entriesOf = async (taskId: string, fields = ''): Promise<Entry[]> =>
      ndjson((await readAll(`${suite.runner.baseUrl}/v1/tasks/${taskId}/logs${fields ? `?fields=${fields}` : ''}`)).body).filter(
        (line) => line.type === 'entry' && line.source === 'task',
      );
    const brief = (entries: Entry[]) => entries.map(({ message, priority }) => ({ message, priority }));

    /** Runs the script on a machine to its end: its exit code and its entries once journald has them all. */
    async function ran(machine: string, parameters: unknown, lastMessage: string) {
      const task = await suite.start(machine, parameters);
      const ended = await waitForState(suite.api, task.taskId, ['exited'], 30_000);
      await waitForJournalLine(suite.runner, task.taskId, lastMessage, 30_000);
      return {
        exitCode: ended.exitCode as number,
        entries: await entriesOf(task.taskId, 'LOGGER,CODE_MODULE,CODE_FUNC,CODE_LINE,TESSIA_LOG_LEVEL'),
      };
    }

    for (const name of ['sample_echo', 'test_multiproc_task_results']) {
      test(`${name} (${SCRIPTS[name]?.source}): the same entries, priorities and exit code as the built-in echo`, async () => {
        const script = SCRIPTS[name]?.parameters as string[];
        const last = (script.at(-1) ?? '').replace(/^echo /i, '');
        const [builtin, tessia] = await Promise.all([ran('echo', script, last), ran('tessia-echo', script, last)]);
        assert.equal(tessia.exitCode, 0);
        assert.equal(tessia.exitCode, builtin.exitCode);
        assert.deepEqual(brief(tessia.entries), brief(builtin.entries));
        assert.equal(tessia.entries[0]?.message, 'Echo machine started');
        // Each logging record is a structured entry: the logger, module, function and line as fields.
        const records = tessia.entries.filter((entry) => entry.fields['LOGGER'] !== undefined);
        assert.deepEqual(
          records.map((entry) => entry.message),
          tessia.entries.filter((entry) => entry.priority !== 6 || entry.message === 'Echo machine started').map((entry) => entry.message),
          "the LOG lines and the machine's own start line are logging records; the ECHO lines are prints",
        );
        for (const record of records) {
          assert.equal(record.fields['LOGGER'], 'sample-task');
          assert.equal(record.fields['CODE_MODULE'], 'machine');
          assert.equal(record.fields['CODE_FUNC'], 'start');
          assert.match(record.fields['CODE_LINE'] ?? '', /^\d+$/);
          assert.equal(record.fields['TESSIA_LOG_LEVEL'], { 2: 'CRITICAL', 3: 'ERROR', 4: 'WARNING', 6: 'INFO' }[record.priority]);
        }
      });
    }

    test('knowingly different: RETURN n is exit code n for the built-in echo, 0 for the original (its run() discards the value)', async () => {
      const script = ['echo returning', 'return 5'];
      const [builtin, tessia] = await Promise.all([ran('echo', script, 'returning'), ran('tessia-echo', script, 'returning')]);
      assert.equal(builtin.exitCode, 5);
      assert.equal(tessia.exitCode, 0);
      assert.deepEqual(brief(tessia.entries), brief(builtin.entries));
    });

    test('RAISE: -3 for both; the original reports its RuntimeError with its traceback in one error entry', async () => {
      const script = ['echo before', 'raise', 'echo after'];
      const builtin = await ran('echo', script, 'RuntimeError: RAISE at line 2');
      const task = await suite.start('tessia-echo', script);
      const ended = await waitForState(suite.api, task.taskId, ['exited'], 30_000);
      assert.equal(ended.exitCode, -3);
      assert.equal(builtin.exitCode, -3);
      const entries = await eventually(
        'the traceback entry',
        () => entriesOf(task.taskId),
        (seen) => seen.some((entry) => entry.priority === 3),
      );
      assert.deepEqual(brief(entries.slice(0, 2)), brief(builtin.entries.slice(0, 2)), 'the same entries up to the raise');
      const failure = entries.find((entry) => entry.priority === 3);
      assert.match(
        failure?.message ?? '',
        /^run\(\) of task_runner\.machines\.echo\.machine:EchoMachine raised RuntimeError\nTraceback \(most recent call last\):\n[\s\S]*\n {4}raise RuntimeError\nRuntimeError$/,
      );
      assert.ok(!entries.some((entry) => entry.message === 'after'));
    });

    test("syntax errors: 400 from both, before anything starts; the original's reason without the script's words", async () => {
      const before = (await suite.api.getAll('/v1/tasks')).length;
      for (const machine of ['echo', 'tessia-echo']) {
        const refused = await suite.api.post('/v1/tasks', { machine, parameters: ['echo fine', 'frobnicate now'] });
        assert.equal(refused.status, 400, JSON.stringify(refused.body));
        assert.equal(refused.body.code, 'INVALID_PARAMETERS');
        assert.match(refused.body.detail, /line 2/);
        assert.doesNotMatch(refused.body.detail, /frobnicate/);
      }
      const original = await suite.api.post('/v1/tasks', { machine: 'tessia-echo', parameters: ['sleep 1 2'] });
      // "SLEEP" is a word of the script: replaced, as every word of the parameters is.
      assert.equal(original.body.detail, 'SyntaxError: … expects 1 argument (2 provided) (EchoMachine, line 1)');
      assert.equal((await suite.api.getAll('/v1/tasks')).length, before, 'nothing was created');
    });

    test('knowingly different: a script as one string runs on the built-in echo; the original iterates its characters, and its validate refuses it', async () => {
      for (const name of ['test_api_echo_machine', 'scheduler_test_api_shortest_request']) {
        const script = SCRIPTS[name]?.parameters;
        assert.equal(typeof script, 'string');
        const builtin = await suite.start('echo', script);
        assert.equal((await waitForState(suite.api, builtin.taskId, ['exited'], 30_000)).exitCode, 0);
        const refused = await suite.api.post('/v1/tasks', { machine: 'tessia-echo', parameters: script });
        assert.equal(refused.status, 400);
        // "EchoMachine" loses "Machine" where the script has the word "Machine": a piece of a value.
        assert.match(refused.body.detail, /^SyntaxError: Invalid command e \((EchoMachine|……), line \d+\)$/);
      }
    });

    test('knowingly different: SLEEP -1 is refused by the built-in echo; the original accepts it and fails at run time (-3)', async () => {
      assert.equal((await suite.api.post('/v1/tasks', { machine: 'echo', parameters: ['sleep -1'] })).status, 400);
      const task = await suite.start('tessia-echo', ['sleep -1']);
      assert.equal((await waitForState(suite.api, task.taskId, ['exited'], 30_000)).exitCode, -3);
    });

    test('a stop: -1 for both; the built-in echo runs its CLEANUP section, the original has none (its finally blocks run)', async () => {
      const script = ['echo started', 'sleep 60', 'cleanup', 'echo cleaning up'];
      const tasks = await Promise.all([suite.start('echo', script), suite.start('tessia-echo', script)]);
      for (const task of tasks) await waitForJournalLine(suite.runner, task.taskId, 'started', 30_000);
      for (const task of tasks) await suite.api.post(`/v1/tasks/${task.taskId}/stop`);
      const [builtin, tessia] = tasks.map((task) => task.taskId);
      for (const taskId of [builtin, tessia]) assert.equal((await waitForState(suite.api, taskId ?? '', ['exited'], 30_000)).exitCode, -1);
      await waitForJournalLine(suite.runner, builtin ?? '', 'cleaning up', 30_000);
      await waitForJournalLine(suite.runner, tessia ?? '', 'Stop requested: the machine may clean up', 30_000);
      assert.ok(!(await entriesOf(tessia ?? '')).some((entry) => entry.message === 'cleaning up'));
    });

    test('PowerManagerMachine without zhmcclient: 500 CHECK_FAILED naming the missing module, nothing created, the runner healthy', async () => {
      const sample = JSON.parse(readFileSync(`${REPO_DIR}/test/fixtures/tessia-mesh/sample_powerman.json`, 'utf8')) as {
        machine: string;
        parameters: unknown;
      };
      const before = (await suite.api.getAll('/v1/tasks')).length;
      const refused = await suite.api.post('/v1/tasks', { machine: 'powerman', parameters: sample.parameters });
      assert.equal(refused.status, 500, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'CHECK_FAILED');
      assert.match(
        refused.body.detail,
        /^machine powerman: the check could not run \(exit status 125\): cannot load machine class task_runner\.machines\.powerman\.machine:PowerManagerMachine: ModuleNotFoundError: No module named 'zhmcclient'$/,
      );
      assert.doesNotMatch(refused.body.detail, /example|hmc\.example\.com|LPAR1/, 'nothing of the parameters');
      assert.equal((await suite.api.getAll('/v1/tasks')).length, before);
      assert.equal((await suite.api.get('/v1/')).status, 200);
      await ran('tessia-echo', ['echo still fine'], 'still fine');
    });

    test(
      "logging records: python3-systemd's handler sends them with their fields; without it, `<N>` lines keep their priorities",
      { skip: skipUnlessPython(['systemd'], "the host's journal transport needs python3-systemd: apt-get install python3-systemd") },
      async () => {
        const plain = await ran('logs-plain', null, 'no newline yet');
        const task = await suite.start('logs-journal', null);
        await waitForState(suite.api, task.taskId, ['exited'], 30_000);
        // A multi-line record is one entry through the handler, a line each through stdout.
        const lines = (entries: Entry[]) =>
          entries.flatMap(({ message, priority }) => message.split('\n').map((line) => ({ line, priority })));
        // Records come through journald's native socket, prints through the stdout stream: journald reads
        // the two sockets in its own order, so the last print is no sign that every record is in.
        const withHandler = {
          entries: await eventually(
            'every record and print of the task',
            () => entriesOf(task.taskId, 'LOGGER,CODE_MODULE,CODE_FUNC,CODE_LINE,TESSIA_LOG_LEVEL'),
            (entries) => lines(entries).length >= lines(plain.entries).length,
          ),
        };
        const byLine = (a: { line: string; priority: number }, b: { line: string; priority: number }) =>
          a.line < b.line ? -1 : a.line > b.line ? 1 : a.priority - b.priority;
        assert.deepEqual(
          lines(withHandler.entries).sort(byLine),
          lines(plain.entries).sort(byLine),
          'the same lines and priorities either way',
        );
        const recordLines = new Set(
          lines(withHandler.entries.filter((entry) => entry.fields['LOGGER'] !== undefined)).map(({ line }) => line),
        );
        assert.deepEqual(
          lines(withHandler.entries).filter(({ line }) => recordLines.has(line)),
          lines(plain.entries).filter(({ line }) => recordLines.has(line)),
          'the records in the order they were logged',
        );
        assert.ok(
          withHandler.entries.some((entry) => entry.message === 'first line\nsecond line'),
          'one entry for a multi-line record',
        );
        const record = withHandler.entries.find((entry) => entry.message === 'warning record');
        assert.deepEqual(
          { ...record?.fields },
          {
            LOGGER: 'probe',
            CODE_MODULE: 'host_probes',
            CODE_FUNC: 'run',
            CODE_LINE: record?.fields['CODE_LINE'],
            TESSIA_LOG_LEVEL: 'WARNING',
          },
        );
        assert.match(record?.fields['CODE_LINE'] ?? '', /^\d+$/);
        assert.equal(
          plain.entries.find((entry) => entry.message === 'warning record')?.fields['LOGGER'],
          undefined,
          'no fields through stdout',
        );
        const priorities = Object.fromEntries(brief(withHandler.entries).map(({ message, priority }) => [message, priority]));
        assert.equal(priorities['debug record'], 7);
        assert.equal(priorities['info record with an argument'], 6);
        assert.equal(priorities['error record'], 3);
        assert.equal(priorities['critical record'], 2);
        assert.equal(priorities['<3>printed, not a priority'], 6);
      },
    );
  },
);
