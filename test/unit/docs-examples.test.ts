import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

/** "`docs/examples/FILE`:" then a fenced block: the file as docs/machines.md prints it. */
const PRINTED = /^`(docs\/examples\/[^`]+)`:\n\n```\w*\n([\s\S]*?)^```$/gm;

describe("docs/machines.md's examples", () => {
  const guide = readFileSync(join(REPO_DIR, 'docs/machines.md'), 'utf8');
  const printed = new Map([...guide.matchAll(PRINTED)].map(([, path, text]) => [path ?? '', text ?? '']));

  it('print every file of docs/examples, each exactly as the tests run it.', () => {
    const files = readdirSync(join(REPO_DIR, 'docs/examples')).map((name) => `docs/examples/${name}`);
    assert.deepEqual([...printed.keys()].sort(), files.sort());
    for (const [path, text] of printed) assert.equal(text, readFileSync(join(REPO_DIR, path), 'utf8'), `${path} differs from the guide`);
  });
});
