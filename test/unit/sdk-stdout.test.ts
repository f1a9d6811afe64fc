/** The machine SDK without the native journal transport: every line to stdout with its `<N>` priority. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

const SCRIPT = `
import { createTaskLog } from './src/machines/sdk.ts';
const log = createTaskLog('probe');
log.write('warning', 'careful\\nsecond line', { TESSIA_STEP: 3 });
log.write('info', '<3>not a priority');
log.write('info', 'hello\\u0000<0>forged');
log.write('info', 'é'.repeat(40000) + '<0>forged');
console.error(log.transport);
await log.flush();
`;

describe('the machine SDK on stdout', () => {
  it('prefixes every line with its priority, and text that looks like a prefix cannot raise it.', () => {
    const ran = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      cwd: REPO_DIR,
      env: { ...process.env, TESSIA_LOG_TRANSPORT: 'stdout' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(ran.stderr.trim(), 'stdout');
    // journald ends a stream's line at NUL as at a newline: the piece after it keeps the prefix.
    assert.deepEqual(ran.stdout.split('\n').filter(Boolean), [
      '<4>careful',
      '<4>second line',
      '<6><3>not a priority',
      '<6>hello',
      '<6><0>forged',
      // 80 000 bytes: in pieces of at most 32 KiB (journald's LineMax= is 48 KiB), cut between characters.
      `<6>${'é'.repeat(16384)}`,
      `<6>${'é'.repeat(16384)}`,
      `<6>${'é'.repeat(40000 - 2 * 16384)}<0>forged`,
    ]);
  });
});
