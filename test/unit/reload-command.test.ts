import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { reloadCommand } from '../../src/cli/reload-command.js';
import { openControlSocket } from '../../src/control-socket.js';
import { EXIT } from '../../src/cli/exit-status.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-reload-command-'));
after(() => rmSync(directory, { recursive: true, force: true }));

/** Runs `reload --control PATH` against a control socket answering with `reload`; returns its status and output. */
async function reloadAgainst(t: TestContext, reload: () => Promise<string>) {
  const path = join(directory, `control-${Math.random().toString(16).slice(2)}.sock`);
  const close = await openControlSocket(path, { reload });
  const written: string[] = [];
  const write = (chunk: string | Uint8Array) => (written.push(String(chunk)), true);
  const stdout = t.mock.method(process.stdout, 'write', write);
  const stderr = t.mock.method(process.stderr, 'write', write);
  try {
    return { status: await reloadCommand(['--control', path, '--timeout', '5']), output: written.join('') };
  } finally {
    stdout.mock.restore();
    stderr.mock.restore();
    await close();
  }
}

const ESCAPES = ['\u001b', '\u0007'];

describe('tessia-task-runner reload', () => {
  it("prints the service's verdict without the escape sequences of a runner that is not to be trusted", async (t) => {
    const applied = await reloadAgainst(t, () => Promise.resolve('applied\u001b]52;c;cm0gLXJmIC8=\u0007 \u001b[2J'));
    assert.equal(applied.status, EXIT.ok);
    assert.ok(applied.output.startsWith('applied'), applied.output);
    for (const escape of ESCAPES) assert.ok(!applied.output.includes(escape), applied.output);

    const refused = await reloadAgainst(t, () => Promise.reject(new Error('bad key \u001b[31mred\u001b[0m')));
    assert.equal(refused.status, EXIT.failed);
    assert.match(refused.output, /refused, the service keeps its config: .*bad key/);
    for (const escape of ESCAPES) assert.ok(!refused.output.includes(escape), refused.output);
  });
});
