import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { EXIT } from '../../src/cli/exit-status.js';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';
import {
  NativeAddonMismatch,
  abiOfLoadFailure,
  asNativeAddonMismatch,
  checkBuildAbi,
  mismatchMessage,
  parseBuildAbi,
} from '../../src/native-abi.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-abi-'));
after(() => rmSync(directory, { recursive: true, force: true }));

const NODE_20 = { modules: '115', node: '20.20.2' };
const NODE_22 = { modules: '127', node: '22.3.0' };

/** Node's own words when an addon of another ABI is loaded (src/node_binding.cc, Node 20). */
function refusal(path: string, built: string, required: string): Error {
  const error = new Error(
    `The module '${path}'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION ${built}. ` +
      `This version of Node.js requires\nNODE_MODULE_VERSION ${required}. Please try re-compiling or re-installing\n` +
      'the module (for instance, using `npm rebuild` or `npm install`).',
  );
  return Object.assign(error, { code: 'ERR_DLOPEN_FAILED' });
}

describe('the build record', () => {
  test('is read when it holds an ABI and a version', () => {
    assert.deepEqual(parseBuildAbi('{"modules":"115","node":"20.20.2"}\n'), NODE_20);
  });

  test('is refused when it is not JSON, lacks a key, or holds something else than an ABI number', () => {
    assert.throws(() => parseBuildAbi('{"modules":'), /not JSON/);
    assert.throws(() => parseBuildAbi('null'), /expected \{"modules"/);
    assert.throws(() => parseBuildAbi('{"modules":"115"}'), /expected \{"modules"/);
    assert.throws(() => parseBuildAbi('{"modules":115,"node":"20.20.2"}'), /expected \{"modules"/);
    assert.throws(() => parseBuildAbi('{"modules":"1a","node":"20.20.2"}'), /expected \{"modules"/);
    assert.throws(() => parseBuildAbi('{"modules":"115","node":"v20"}'), /expected \{"modules"/);
  });

  test('the build writes is that of the Node.js that ran it', () => {
    const written = readFileSync(join(REPO_DIR, 'dist/build-abi.json'), 'utf8');
    assert.equal(written, `${JSON.stringify({ modules: process.versions.modules, node: process.versions.node })}\n`);
  });
});

describe('the comparison', () => {
  test('finds nothing to say when the ABIs are the same, whatever the versions', () => {
    assert.equal(mismatchMessage(NODE_20, NODE_20), null);
    assert.equal(mismatchMessage({ modules: '115', node: '20.1.0' }, NODE_20), null);
    assert.equal(mismatchMessage({ modules: '115' }, NODE_20, 'better_sqlite3.node'), null);
  });

  test('says which Node.js built the addons, which runs them, and what to do', () => {
    assert.equal(
      mismatchMessage(NODE_20, NODE_22),
      'its native addons were built for Node.js 20.20.2 (ABI 115) but this is Node.js 22.3.0 (ABI 127): ' +
        'install a tessia-task-runner package built for Node.js 22 or go back to Node.js 20 ' +
        "(the package's nodejs dependency names it); in a source tree, npm rebuild then npm run build",
    );
  });

  test('names an addon that refused, and its Node.js from the ABI alone when that ABI is known', () => {
    const message = mismatchMessage({ modules: '127' }, NODE_20, 'better_sqlite3.node') ?? '';
    assert.match(
      message,
      /^its native addon better_sqlite3\.node was built for Node\.js 22 \(ABI 127\) but this is Node\.js 20\.20\.2 \(ABI 115\): /,
    );
    assert.match(message, /go back to Node\.js 22 /);
    const unknown = mismatchMessage({ modules: '999' }, NODE_20, 'x.node') ?? '';
    assert.match(unknown, /was built for the Node\.js of ABI 999 but this is Node\.js 20\.20\.2 \(ABI 115\)/);
    assert.match(unknown, /go back to the Node\.js of ABI 999 /);
  });

  test('is one line', () => {
    assert.doesNotMatch(mismatchMessage(NODE_22, NODE_20) ?? '\n', /\n/);
  });
});

describe('checkBuildAbi', () => {
  const record = (name: string, text: string) => {
    const path = join(directory, name);
    writeFileSync(path, text);
    return path;
  };

  test('passes a record of the running ABI and returns it', () => {
    assert.deepEqual(checkBuildAbi(record('same.json', JSON.stringify(NODE_20)), NODE_20), { recorded: true, built: NODE_20 });
  });

  test('throws NativeAddonMismatch for another ABI', () => {
    assert.throws(
      () => checkBuildAbi(record('other.json', JSON.stringify(NODE_20)), NODE_22),
      (error: unknown) =>
        error instanceof NativeAddonMismatch && error.message.startsWith('its native addons were built for Node.js 20.20.2'),
    );
  });

  test('checks nothing without a record, or with one it cannot read, and says why', () => {
    const missing = join(directory, 'none.json');
    assert.deepEqual(checkBuildAbi(missing, NODE_20), { recorded: false, why: `${missing}: there is none` });
    const broken = checkBuildAbi(record('broken.json', '{'), NODE_22);
    assert.ok(!broken.recorded, 'an unreadable record is no record');
    assert.match(broken.why, /broken\.json: not JSON/);
  });
});

describe("an addon's refusal to load", () => {
  test('gives the ABI it was built for and its file name', () => {
    assert.deepEqual(abiOfLoadFailure(refusal('/usr/lib/x/build/Release/better_sqlite3.node', '127', '115')), {
      modules: '127',
      addon: 'better_sqlite3.node',
    });
  });

  test('is found through causes', () => {
    const wrapped = new Error('opening the store', { cause: new Error('loading', { cause: refusal('/a/b.node', '108', '115') }) });
    assert.deepEqual(abiOfLoadFailure(wrapped), { modules: '108', addon: 'b.node' });
  });

  test('is not read into another dlopen failure, or into other errors', () => {
    const missingLibrary = Object.assign(new Error('libfoo.so.1: cannot open shared object file: No such file or directory'), {
      code: 'ERR_DLOPEN_FAILED',
    });
    assert.equal(abiOfLoadFailure(missingLibrary), null);
    assert.equal(abiOfLoadFailure(new Error(refusal('/a/b.node', '127', '115').message)), null, 'the code, not the words alone');
    assert.equal(abiOfLoadFailure('NODE_MODULE_VERSION 127'), null);
    assert.equal(abiOfLoadFailure(undefined), null);
  });

  test('becomes a NativeAddonMismatch with the same words as the record check, keeping the cause', () => {
    const raw = refusal('/x/better_sqlite3.node', '127', '115');
    const mismatch = asNativeAddonMismatch(raw, NODE_20);
    assert.ok(mismatch instanceof NativeAddonMismatch);
    assert.equal(mismatch.message, mismatchMessage({ modules: '127' }, NODE_20, 'better_sqlite3.node'));
    assert.equal(mismatch.cause, raw);
    const already = new NativeAddonMismatch('said');
    assert.equal(asNativeAddonMismatch(already), already);
    assert.equal(asNativeAddonMismatch(new Error('other')), null);
  });
});

describe('serve with a build record of another Node.js', () => {
  /** A copy of the built tree (dist/, package.json, node_modules linked) whose record says `record`. */
  function treeWith(record: string): string {
    const tree = mkdtempSync(join(directory, 'tree-'));
    cpSync(join(REPO_DIR, 'dist'), join(tree, 'dist'), { recursive: true });
    cpSync(join(REPO_DIR, 'package.json'), join(tree, 'package.json'));
    symlinkSync(join(REPO_DIR, 'node_modules'), join(tree, 'node_modules'));
    writeFileSync(join(tree, 'dist/build-abi.json'), record);
    return tree;
  }

  test(`exits ${EXIT.nativeAddonMismatch} with one line on stderr, before reading its config or making its state directory`, () => {
    const tree = treeWith('{"modules":"1","node":"1.0.0"}');
    const stateDir = join(tree, 'state');
    const run = spawnSync(
      process.execPath,
      [join(tree, 'dist/cli/main.js'), 'serve', '--config', join(tree, 'no-such-config.yaml'), '--state-dir', stateDir],
      { encoding: 'utf8', timeout: 20_000, env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' } },
    );
    assert.equal(run.status, EXIT.nativeAddonMismatch, run.stderr);
    assert.equal(
      run.stderr,
      `tessia-task-runner: ${mismatchMessage({ modules: '1', node: '1.0.0' }, { modules: process.versions.modules, node: process.versions.node })}\n`,
    );
    assert.equal(run.stdout, '');
    assert.equal(existsSync(stateDir), false, 'nothing made');
  });

  test('importing serve loads no addon: the check comes before better-sqlite3 is even imported', () => {
    const script = `await import(${JSON.stringify(join(REPO_DIR, 'dist/cli/serve.js'))});
      const { createRequire } = await import('node:module');
      console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, run.stderr);
    const loaded = JSON.parse(run.stdout) as string[];
    assert.ok(
      loaded.some((path) => path.includes('/node_modules/pino/')),
      'what serve imports is listed (pino, a CommonJS module)',
    );
    assert.deepEqual(
      loaded.filter((path) => /\/node_modules\/(better-sqlite3|unix-dgram|bindings)\//.test(path)),
      [],
    );
  });
});
