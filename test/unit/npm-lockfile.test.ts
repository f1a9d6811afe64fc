import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

const SCRIPT = join(REPO_DIR, 'scripts/npm-lockfile.mjs');
const directory = mkdtempSync(join(tmpdir(), 'tessia-npm-lockfile-'));
after(() => rmSync(directory, { recursive: true, force: true }));

/** Runs `npm-lockfile.mjs resolved` on a lockfile holding `entry` as one package. */
function resolve(entry: Record<string, unknown>) {
  const file = join(directory, `lock-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, 'node_modules/left-pad': entry } }));
  return spawnSync(process.execPath, [SCRIPT, 'resolved', file], { encoding: 'utf8' });
}

describe('scripts/npm-lockfile.mjs (the offline build takes registry packages checked by digest only)', () => {
  it("fills in a registry package's URL from its name and version", () => {
    const ran = resolve({ version: '1.3.0', integrity: 'sha512-AAAA' });
    assert.equal(ran.status, 0, ran.stderr);
    const lock = JSON.parse(ran.stdout) as { packages: Record<string, { resolved?: string }> };
    assert.equal(lock.packages['node_modules/left-pad']?.resolved, 'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz');
  });

  for (const [what, entry] of [
    ['without integrity', { version: '1.3.0' }],
    ['with only a sha1', { version: '1.3.0', integrity: 'sha1-AAAA' }],
    ['from git', { version: '1.3.0', integrity: 'sha512-AAAA', resolved: 'git+ssh://git@example.org/left-pad.git#abc' }],
    ['from another URL', { version: '1.3.0', integrity: 'sha512-AAAA', resolved: 'https://example.org/left-pad.tgz' }],
  ] as const) {
    it(`refuses a package ${what}`, () => {
      const ran = resolve(entry);
      assert.notEqual(ran.status, 0);
      assert.match(ran.stderr, /node_modules\/left-pad (has no sha512 integrity|comes from)/);
      assert.equal(ran.stdout, '');
    });
  }

  it("passes this repository's lockfile", () => {
    const ran = spawnSync(process.execPath, [SCRIPT, 'resolved', join(REPO_DIR, 'package-lock.json')], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    assert.equal(ran.status, 0, ran.stderr);
    const lock = JSON.parse(readFileSync(join(REPO_DIR, 'package-lock.json'), 'utf8')) as { packages: object };
    assert.equal(Object.keys((JSON.parse(ran.stdout) as { packages: object }).packages).length, Object.keys(lock.packages).length);
  });
});
