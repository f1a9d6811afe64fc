/** Socket activation: what each passed descriptor is, from /proc as the kernel shows it. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { activationFds, socketKind } from '../../src/systemd/activation.js';

const proc = mkdtempSync(join(tmpdir(), 'tessia-proc-'));
after(() => rmSync(proc, { recursive: true, force: true }));
mkdirSync(join(proc, 'fd'));
mkdirSync(join(proc, 'net'));
symlinkSync('socket:[4242]', join(proc, 'fd/3'));
symlinkSync('socket:[999]', join(proc, 'fd/4'));
symlinkSync('/dev/null', join(proc, 'fd/5'));
symlinkSync('socket:[42]', join(proc, 'fd/6'));
symlinkSync('socket:[777]', join(proc, 'fd/7'));
writeFileSync(
  join(proc, 'net/unix'),
  [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/tessia-task-runner.sock',
    '0000000000000000: 00000003 00000000 00000000 0001 03 424242',
    // A socket a local user named "\n0 0 0 0 0 0 777": its path reads as a line listing the TCP socket's inode.
    '0000000000000000: 00000002 00000000 00010000 0001 01 5555 @',
    '0 0 0 0 0 0 777',
    '',
  ].join('\n'),
);
writeFileSync(
  join(proc, 'net/tcp'),
  [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1CBC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0',
    '',
  ].join('\n'),
);

it('knows a TCP socket by the TCP table and a Unix one by the Unix table, whatever a socket path pretends', () => {
  assert.equal(socketKind(3, proc), 'unix');
  assert.equal(socketKind(7, proc), 'tcp', 'listed as TCP, and in the Unix table by a forged path');
  assert.equal(socketKind(4, proc), undefined, 'a socket in no table');
  assert.equal(socketKind(5, proc), undefined, 'not a socket');
  assert.equal(socketKind(6, proc), undefined, 'an inode that is a prefix of a listed one');
});

it('takes the passed descriptors only when LISTEN_PID is this process', () => {
  assert.deepEqual(activationFds({ LISTEN_FDS: '2', LISTEN_PID: String(process.pid) }), [3, 4]);
  assert.deepEqual(activationFds({ LISTEN_FDS: '2', LISTEN_PID: '1' }), []);
  assert.deepEqual(activationFds({}), []);
});
