/** Socket activation: which passed descriptors are Unix sockets, from /proc as the kernel shows it. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { activationFds, isUnixSocket } from '../../src/systemd/activation.js';

const proc = mkdtempSync(join(tmpdir(), 'tessia-proc-'));
after(() => rmSync(proc, { recursive: true, force: true }));
mkdirSync(join(proc, 'fd'));
mkdirSync(join(proc, 'net'));
symlinkSync('socket:[4242]', join(proc, 'fd/3'));
symlinkSync('socket:[999]', join(proc, 'fd/4'));
symlinkSync('/dev/null', join(proc, 'fd/5'));
symlinkSync('socket:[42]', join(proc, 'fd/6'));
writeFileSync(
  join(proc, 'net/unix'),
  [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/tessia-task-runner.sock',
    '0000000000000000: 00000003 00000000 00000000 0001 03 424242',
    '',
  ].join('\n'),
);

it('knows a Unix socket by its inode among the kernel’s Unix sockets, and nothing else for one', () => {
  assert.equal(isUnixSocket(3, proc), true);
  assert.equal(isUnixSocket(4, proc), false, 'a socket that is not listed (TCP)');
  assert.equal(isUnixSocket(5, proc), false, 'not a socket');
  assert.equal(isUnixSocket(6, proc), false, 'an inode that is a prefix of a listed one');
});

it('takes the passed descriptors only when LISTEN_PID is this process', () => {
  assert.deepEqual(activationFds({ LISTEN_FDS: '2', LISTEN_PID: String(process.pid) }), [3, 4]);
  assert.deepEqual(activationFds({ LISTEN_FDS: '2', LISTEN_PID: '1' }), []);
  assert.deepEqual(activationFds({}), []);
});
