/**
 * The packages build where distributions build them: with no network at all. The Debian source
 * package of this checkout is made (the only step that reaches the npm registry), then its binary
 * package is built from it twice inside `unshare --net` (a network namespace with only a loopback,
 * down), in two different directories, and the two .debs must be byte-identical. The RPM is built
 * from its two sources inside `unshare --net` too. A build that tried the network would fail there.
 * The .deb is handed to the package suite of the same run (test/harness/offline-deb.ts).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PrivateSystemd, REPO_DIR } from '../../src/embedded/private-systemd.js';
import { holdPackageTurn } from '../harness/deb-package.js';
import { handOverOfflineDeb, sha256Of } from '../harness/offline-deb.js';
import { skipUnlessInstalled } from '../harness/requirements.js';

const execFileAsync = promisify(execFile);
const NAME = 'tessia-task-runner';
const VERSION = (JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version;
const REGISTRY_HOST = 'registry.npmjs.org';

const SKIP = skipUnlessInstalled(
  ['dh', 'dpkg-buildpackage', 'dpkg-source', 'dpkg-deb', 'python3', 'make', 'g++', 'xz', 'unshare', 'npm'],
  'the offline package build suite needs the packaging tools and a compiler: apt-get install debhelper dpkg-dev python3 make g++ xz-utils util-linux (.ci/run does)',
);
const SKIP_RPM = skipUnlessInstalled(['rpmbuild'], 'the offline RPM build needs rpmbuild: apt-get install rpm (.ci/run does)');

/** Runs `argv` in a network namespace of its own: the loopback only, down. */
async function offline(argv: string[], cwd: string) {
  const began = Date.now();
  try {
    // No network, and nothing of the builder's npm cache or node-gyp headers (an empty file system
    // over each): a build that fell back on them would fail here.
    const hidden = [join(homedir(), '.npm'), join(homedir(), '.cache')];
    for (const directory of hidden) mkdirSync(directory, { recursive: true });
    const hide = 'for d in "$0" "$1"; do mount -t tmpfs -o size=1m,mode=0700 tmpfs "$d" || exit 1; done; shift; exec "$@"';
    const result = await execFileAsync('unshare', ['--net', '--mount', '--', 'sh', '-c', hide, ...hidden, ...argv], {
      cwd,
      timeout: 30 * 60_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { ...result, seconds: Math.round((Date.now() - began) / 1000) };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(
      `${argv.join(' ')} failed with no network: ${String(error)}\n${`${failed.stdout ?? ''}${failed.stderr ?? ''}`.slice(-8000)}`,
      {
        cause: error,
      },
    );
  }
}

/** Connects to `host` port 443; prints `connected` or the error's code. */
const CONNECT = `require('node:net').connect(443, process.argv[1])
  .on('connect', function () { console.log('connected'); this.destroy(); })
  .on('error', (error) => { console.log(error.code); process.exitCode = 1; })`;

describe('the packages build with no network', { timeout: 60 * 60_000, skip: SKIP }, () => {
  const arch = SKIP ? '' : execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const component = `${NAME}_${VERSION}.orig-npm-cache.tar.xz`;
  let work = '';
  let sources = '';
  let dsc = '';
  let releaseTurn: (() => void) | undefined;

  before(async () => {
    // Before the suites that install the package, which then take the .deb built here.
    releaseTurn = await holdPackageTurn(PrivateSystemd.fromEnvironment(), 'package-build.test.ts');
    work = mkdtempSync(join(tmpdir(), 'tessia-package-build-'));
    sources = join(work, 'sources');
    dsc = join(sources, `${NAME}_${VERSION}-1.dsc`);
    // The npm tarball of an earlier build of this lockfile, if packaging/out has one (vendor-npm.sh
    // keeps it only if it was made from this lockfile): fetching it again takes minutes.
    mkdirSync(sources);
    const earlier = join(REPO_DIR, 'packaging/out', component);
    if (existsSync(earlier)) copyFileSync(earlier, join(sources, component));
    await execFileAsync('sh', [join(REPO_DIR, 'scripts/package-deb.sh'), '--source-only', '--out', sources], {
      cwd: REPO_DIR,
      timeout: 15 * 60_000,
      maxBuffer: 256 * 1024 * 1024,
    });
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    releaseTurn?.();
  });

  test('the source package is the sources, the npm packages as a component, and debian/', () => {
    assert.deepEqual(readdirSync(sources).sort(), [
      `${NAME}_${VERSION}-1.debian.tar.xz`,
      `${NAME}_${VERSION}-1.dsc`,
      component,
      `${NAME}_${VERSION}.orig.tar.xz`,
    ]);
    assert.match(readFileSync(dsc, 'utf8'), /^Format: 3\.0 \(quilt\)$/m);
    const npmCache = execFileSync('tar', ['-tJf', join(sources, component)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.ok(npmCache.split('\n').filter((path) => path.startsWith('npm-cache/_cacache/content-v2/sha512/')).length > 300);
  });

  test('a process started as the builds are cannot reach the npm registry', async () => {
    const { address } = await lookup(REGISTRY_HOST, { family: 4 });
    // The probe itself works: it connects from here.
    assert.equal(execFileSync('node', ['-e', CONNECT, address], { encoding: 'utf8', timeout: 30_000 }).trim(), 'connected');
    for (const host of [REGISTRY_HOST, address]) {
      const inside = await execFileAsync('unshare', ['--net', '--', 'node', '-e', CONNECT, host], { timeout: 30_000 }).catch(
        (error: unknown) => error as { stdout: string; code: number },
      );
      assert.ok('code' in inside && inside.code === 1, `the probe connected to ${host} with no network`);
      assert.match(inside.stdout.trim(), host === address ? /^ENETUNREACH$/ : /^(EAI_AGAIN|ENOTFOUND)$/);
    }
  });

  test('the .deb builds from the source package with no network, twice to the same bytes', async (t) => {
    const debs: Record<string, string>[] = [];
    // Two directories of different paths: the path of the build is not in the package.
    for (const directory of [join(work, 'first'), join(work, 'second', 'elsewhere')]) {
      const tree = join(directory, `${NAME}-${VERSION}`);
      mkdirSync(directory, { recursive: true });
      execFileSync('dpkg-source', ['--extract', dsc, tree], { stdio: 'ignore' });
      const built = await offline(['dpkg-buildpackage', '--build=binary', '--no-sign'], tree);
      t.diagnostic(`offline binary build in ${directory}: ${built.seconds} s`);
      const files = readdirSync(directory).filter((file) => file.endsWith('.deb'));
      debs.push(Object.fromEntries(files.map((file) => [file, sha256Of(join(directory, file))])));
    }
    const [first, second] = debs;
    assert.deepEqual(Object.keys(first ?? {}).sort(), [
      `cockpit-${NAME}_${VERSION}-1_all.deb`,
      `${NAME}-dbgsym_${VERSION}-1_${arch}.deb`,
      `${NAME}_${VERSION}-1_${arch}.deb`,
    ]);
    for (const [file, sha256] of Object.entries(first ?? {})) t.diagnostic(`${file} sha256 ${sha256}`);
    assert.deepEqual(second, first, 'the two builds gave the same bytes');
    const deb = join(work, 'first', `${NAME}_${VERSION}-1_${arch}.deb`);
    handOverOfflineDeb(deb);

    // Built for this node's ABI, and pinned to its major.
    const major = Number(process.versions.node.split('.')[0]);
    const depends = execFileSync('dpkg-deb', ['--field', deb, 'Depends'], { encoding: 'utf8' });
    assert.match(depends, new RegExp(`nodejs \\(>= ${major}~\\), nodejs \\(<< ${major + 1}~\\)`));
    const abi = execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/lib/${NAME}/dist/build-abi.json`, 'sh', deb], {
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(abi), { modules: process.versions.modules, node: process.versions.node });
  });

  test('the RPM builds from its two sources with no network', { skip: SKIP_RPM }, async (t) => {
    // Its npm tarball is the source package's (made above); the rest is the checkout.
    const built = await offline(['sh', join(REPO_DIR, 'scripts/package-rpm.sh'), '--out', sources], REPO_DIR);
    t.diagnostic(`offline RPM build: ${built.seconds} s`);
    const rpms = readdirSync(sources)
      .filter((file) => file.endsWith('.rpm'))
      .sort();
    // The runner's (for this machine's architecture), and the Cockpit page's (noarch).
    assert.equal(rpms.length, 2, rpms.join(' '));
    assert.equal(rpms[0], `cockpit-${NAME}-${VERSION}-1.noarch.rpm`);
    assert.ok(rpms[1]?.startsWith(`${NAME}-${VERSION}-1.`), rpms.join(' '));
    const runnerRpm = rpms.find((file) => file.startsWith(`${NAME}-`)) ?? '';
    const requires = execFileSync('rpm', ['-qp', '--requires', join(sources, runnerRpm)], { encoding: 'utf8' });
    assert.match(requires, new RegExp(`^nodejs\\(abi${process.versions.node.split('.')[0]}\\)$`, 'm'));
    const cockpitRequires = execFileSync('rpm', ['-qp', '--requires', join(sources, `cockpit-${NAME}-${VERSION}-1.noarch.rpm`)], {
      encoding: 'utf8',
    });
    assert.match(cockpitRequires, /^cockpit-bridge >= 266$/m);
  });
});
