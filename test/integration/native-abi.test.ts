/**
 * The runner as a service whose compiled addons were built for another Node.js (a nodejs upgrade
 * past the package's pin): it says so in one line and stays down, as the shipped unit's restart
 * policy has it, instead of dying in a stack trace and restarting in a loop. Each runner runs from a
 * copy of the built tree inside the private system: its build record rewritten, or an addon replaced
 * by one that Node's loader really refuses (test/fixtures/other-abi-addon.cc).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/exit-status.js';
import { eventually } from '../../src/embedded/eventually.js';
import { APP_DIR_INSIDE, PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { startRunnerUnit } from '../../src/embedded/runner-unit.js';
import { mismatchMessage, runningAbi } from '../../src/native-abi.js';
import { NODE_HEADERS, skipUnlessAddonCompiler, skipUnlessNativeJournal } from '../harness/requirements.js';
import { startTestRunner } from '../harness/test-runner.js';

const RUNNING = runningAbi();
/** An ABI that is not this Node.js's: Node.js 22's, or Node.js 20's on Node.js 22. */
const OTHER_ABI = RUNNING.modules === '127' ? '115' : '127';
const COMPILER = skipUnlessAddonCompiler(
  'the tests of an addon built for another Node.js compile one: apt-get install g++ (Node.js headers: its package ships them)',
);

const UNIX_DGRAM = skipUnlessNativeJournal('the test of unix-dgram built for another Node.js');

/** The shipped unit's restart policy, with a short RestartSec so that a restart loop would show at once. */
function shippedRestartPolicy(): string[] {
  const unit = readFileSync(join(REPO_DIR, 'units/tessia-task-runner.service'), 'utf8');
  const policy = unit.split('\n').filter((line) => /^(Restart|RestartPreventExitStatus)=/.test(line));
  assert.ok(policy.some((line) => line.startsWith('Restart=')));
  return [...policy, 'RestartSec=100ms'];
}

interface Tree {
  /** Its directory inside the private system, and as this process reaches it. */
  inside: string;
  outside: string;
}

describe('a runner whose native addons were built for another Node.js', () => {
  let systemd: PrivateSystemd;
  const trees: Tree[] = [];
  const units: string[] = [];
  let otherAbiAddon = '';
  const work = mkdtempSync(join(tmpdir(), 'tessia-abi-'));

  before(() => {
    systemd = PrivateSystemd.fromEnvironment();
    if (COMPILER !== false) return;
    otherAbiAddon = join(work, 'other-abi.node');
    execFileSync('g++', [
      '-std=c++17',
      '-shared',
      '-fPIC',
      `-I${NODE_HEADERS}`,
      `-DOTHER_ABI=${OTHER_ABI}`,
      join(REPO_DIR, 'test/fixtures/other-abi-addon.cc'),
      '-o',
      otherAbiAddon,
    ]);
  });

  after(async () => {
    for (const unit of units) {
      await systemd.systemctl('stop', unit);
      await systemd.systemctl('reset-failed', unit);
    }
    for (const tree of trees) rmSync(tree.outside, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  /**
   * A copy of the built tree: dist/ with `record` as its build record (null: none, as a tree built
   * before records existed), package.json, a config, and node_modules from the checkout, but for the
   * addons of `otherAbi` (package → its .node file) replaced by one built for another ABI.
   */
  function treeWith(record: string | null, otherAbi: Record<string, string> = {}): Tree {
    const name = `abi-${randomBytes(4).toString('hex')}`;
    const tree = { inside: `/run/tessia-test/${name}`, outside: `${systemd.root}/run/tessia-test/${name}` };
    trees.push(tree);
    cpSync(join(REPO_DIR, 'dist'), join(tree.outside, 'dist'), { recursive: true });
    cpSync(join(REPO_DIR, 'package.json'), join(tree.outside, 'package.json'));
    writeFileSync(join(tree.outside, 'config.yaml'), 'log:\n  level: debug\n');
    if (record === null) rmSync(join(tree.outside, 'dist/build-abi.json'));
    else writeFileSync(join(tree.outside, 'dist/build-abi.json'), record);
    const modules = join(tree.outside, 'node_modules');
    mkdirSync(modules);
    for (const entry of readdirSync(join(REPO_DIR, 'node_modules'))) {
      const addon = otherAbi[entry];
      if (addon === undefined) {
        symlinkSync(`${APP_DIR_INSIDE}/node_modules/${entry}`, join(modules, entry));
        continue;
      }
      // Its JavaScript as installed; `bindings` finds the addon in build/Release.
      for (const part of ['package.json', 'lib'])
        cpSync(join(REPO_DIR, 'node_modules', entry, part), join(modules, entry, part), { recursive: true });
      mkdirSync(join(modules, entry, 'build/Release'), { recursive: true });
      cpSync(otherAbiAddon, join(modules, entry, 'build/Release', addon));
    }
    return tree;
  }

  /** `serve` from `tree` as a service with the shipped unit's restart policy; resolves once it has stopped for good. */
  async function serveUntilDown(tree: Tree): Promise<{ unit: string; status: Record<string, string>; stderrLines: string[] }> {
    const unit = `tessia-test-abi-${randomBytes(4).toString('hex')}.service`;
    units.push(unit);
    await startRunnerUnit(systemd, {
      unit,
      serveArgs: ['--config', `${tree.inside}/config.yaml`, '--listen', '127.0.0.1:7399', '--state-dir', `${tree.inside}/state`],
      properties: shippedRestartPolicy(),
      entry: [`${tree.inside}/dist/cli/main.js`],
    });
    const status = await eventually(
      `${unit} down`,
      () => systemd.show(unit, ['ActiveState', 'Result', 'ExecMainStatus', 'NRestarts']),
      (shown) => shown['ActiveState'] === 'failed',
    );
    const journal = await eventually(
      'its last words in the journal',
      async () => (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit])).stdout,
      (text) => text.includes('tessia-task-runner: '),
    );
    return { unit, status, stderrLines: journal.split('\n').filter((line) => line.startsWith('tessia-task-runner: ')) };
  }

  /** How the unit ends when the runner refuses its addons: failed with 78, not restarted. */
  const DOWN_FOR_ITS_ADDONS = {
    ActiveState: 'failed',
    Result: 'exit-code',
    ExecMainStatus: String(EXIT.nativeAddonMismatch),
    NRestarts: '0',
  };

  test(`with a build record of another ABI: one line, exit ${EXIT.nativeAddonMismatch}, no restart, nothing made`, async () => {
    const tree = treeWith('{"modules":"1","node":"1.0.0"}');
    const { unit, status, stderrLines } = await serveUntilDown(tree);
    assert.deepEqual(status, DOWN_FOR_ITS_ADDONS);
    assert.deepEqual(stderrLines, [`tessia-task-runner: ${mismatchMessage({ modules: '1', node: '1.0.0' }, RUNNING)}`]);
    const journal = (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit])).stdout;
    assert.doesNotMatch(journal, /^\s+at /m, 'no stack trace');
    assert.match((await systemd.systemctl('status', unit)).stdout, /status=78\/CONFIG/, 'as docs/admin.md shows it');
    assert.equal(existsSync(join(tree.outside, 'state')), false, 'no state directory, no store');
  });

  test(
    'without a build record, better-sqlite3 built for another ABI: the same line from its own refusal, no store file',
    { skip: COMPILER },
    async () => {
      const tree = treeWith(null, { 'better-sqlite3': 'better_sqlite3.node' });
      const { unit, status, stderrLines } = await serveUntilDown(tree);
      assert.deepEqual(status, DOWN_FOR_ITS_ADDONS);
      assert.deepEqual(stderrLines, [`tessia-task-runner: ${mismatchMessage({ modules: OTHER_ABI }, RUNNING, 'better_sqlite3.node')}`]);
      const journal = (await systemd.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit])).stdout;
      assert.match(
        journal,
        /ABI was not checked before loading them: no build record \(.*build-abi\.json: there is none\)/,
        'the debug line',
      );
      assert.doesNotMatch(journal, /^\s+at /m, 'no stack trace');
      assert.deepEqual(readdirSync(join(tree.outside, 'state')), [], 'the store was never opened');
    },
  );

  test(
    'unix-dgram built for another ABI: the runner starts, writes text to the journal, and warns why',
    { skip: COMPILER || UNIX_DGRAM },
    async () => {
      const tree = treeWith(readFileSync(join(REPO_DIR, 'dist/build-abi.json'), 'utf8'), { 'unix-dgram': 'unix_dgram.node' });
      const runner = await startTestRunner({}, { starter: false });
      units.push(runner.unit);
      await runner.stop();
      await runner.start({}, [], [`${tree.inside}/dist/cli/main.js`]);
      assert.equal((await fetch(`${runner.baseUrl}/v1/`)).status, 200, 'it answers');
      const entries = await eventually(
        'the warning',
        () => runner.journalEntries(),
        (all) => all.some((entry) => entry['MESSAGE']?.includes('built for another Node.js') === true),
      );
      // The first start, from the checkout, may have said "not built" (a checkout without a compiler).
      const warnings = entries.filter((entry) => entry['MESSAGE']?.includes('built for another Node.js') === true);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      const [warning] = warnings as [Record<string, string>];
      assert.equal(warning['PRIORITY'], '4');
      assert.equal(warning['_TRANSPORT'], 'stdout', 'written as text: unix-dgram did not load');
      assert.ok(
        warning['MESSAGE']?.startsWith(
          `the native journal transport is off (unix-dgram was built for another Node.js: ${mismatchMessage({ modules: OTHER_ABI }, RUNNING, 'unix_dgram.node')}):`,
        ),
        warning['MESSAGE'],
      );
      await runner.stop();
    },
  );
});
