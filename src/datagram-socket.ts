/**
 * A connected Unix datagram socket through the optional `unix-dgram` addon (Node has no Unix
 * datagram sockets of its own); the only module that loads it. What unix-dgram 2.0.x does, from its
 * source (lib/unix_dgram.js, src/unix_dgram.cc), and what this module relies on:
 * - every call is synchronous, and `send`'s callback runs before `send` returns;
 * - a *connected* send that finds the receiver's queue or our send buffer full (EAGAIN, ENOBUFS)
 *   reports "congestion" (code 1) and polls for writability, then emits 'writable' once; an
 *   unconnected `sendto` reports EAGAIN as a plain error and never emits 'writable';
 * - `connect` reports failure with an 'error' event (emitted synchronously);
 * - the socket's poll handle is referenced from creation until `close()`, and unix-dgram offers no
 *   unref: while a socket is open, the process does not exit.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { messageOf } from './errors.js';
import { asNativeAddonMismatch } from './native-abi.js';

/**
 * sent: the receiver has it. congested: try again on `onWritable`. too-large: over the socket's
 * send buffer. disconnected: the receiver is gone (journald restarting): connect again.
 * refused: this datagram failed for another reason.
 */
export type SendOutcome = 'sent' | 'congested' | 'too-large' | 'disconnected' | 'refused';

export interface DatagramSocket {
  send(datagram: Buffer): SendOutcome;
  close(): void;
}

type ErrnoError = Error & { code?: number };

interface UnixDgramSocket {
  connect(path: string): void;
  send(buffer: Buffer, callback: (error?: ErrnoError) => void): void;
  on(event: 'error', listener: (error: ErrnoError) => void): void;
  on(event: 'writable', listener: () => void): void;
  close(): void;
}

export interface UnixDgram {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

const CONGESTION = 1;
const { errno } = constants;
const DISCONNECTED = new Set([errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE, errno.EDESTADDRREQ]);
/** Linux refuses a datagram larger than the send buffer less this (net/unix/af_unix.c). */
const SEND_BUFFER_RESERVE = 32;
const LINUX_DEFAULT_SEND_BUFFER = 212_992;

/**
 * Why unix-dgram is not there: not installed (an optional dependency), or its addon is missing (no
 * C++ compiler at install time) or built for another Node.js (a nodejs upgrade past the package's pin).
 */
export interface UnixDgramMissing {
  reason: 'not-installed' | 'not-built' | 'built-for-another-node' | 'failed';
  detail: string;
}

/** unix-dgram, or why it cannot be used. */
export function loadUnixDgram(): { unixDgram: UnixDgram } | { unixDgram: null; missing: UnixDgramMissing } {
  try {
    // Called when a process opens its journal, at its start (native.ts), so it loads with the rest
    // (see eslint.config.js); an optional addon: required where its absence can be told.
    const module = createRequire(import.meta.url)('unix-dgram') as Partial<UnixDgram>;
    if (typeof module.createSocket === 'function') return { unixDgram: module as UnixDgram };
    return { unixDgram: null, missing: { reason: 'failed', detail: 'unix-dgram has no createSocket' } };
  } catch (error) {
    return { unixDgram: null, missing: whyNotLoaded(error) };
  }
}

function whyNotLoaded(error: unknown): UnixDgramMissing {
  const mismatch = asNativeAddonMismatch(error);
  if (mismatch) return { reason: 'built-for-another-node', detail: `unix-dgram was built for another Node.js: ${mismatch.message}` };
  if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && messageOf(error).includes("'unix-dgram'")) {
    return { reason: 'not-installed', detail: 'unix-dgram is not installed' };
  }
  // The `bindings` module's words when no build/Release/unix_dgram.node exists.
  if (messageOf(error).startsWith('Could not locate the bindings file')) {
    return { reason: 'not-built', detail: 'unix-dgram is installed but its addon was not built (no C++ compiler at install time?)' };
  }
  return { reason: 'failed', detail: `unix-dgram did not load: ${messageOf(error).split('\n')[0] ?? ''}` };
}

/**
 * The largest datagram a new socket can send: its send buffer (net.core.wmem_default; unix-dgram
 * cannot set SO_SNDBUF as sd-journal does) less the kernel's reserve.
 */
export function largestDatagram(): number {
  let sendBuffer = LINUX_DEFAULT_SEND_BUFFER;
  try {
    sendBuffer = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8').trim()) || sendBuffer;
  } catch {
    // not Linux's /proc: keep Linux's default
  }
  return sendBuffer - SEND_BUFFER_RESERVE;
}

/** A socket connected to `path`, or null when there is no receiver there (yet). */
export function connectDatagramSocket(unixDgram: UnixDgram, path: string, onWritable: () => void): DatagramSocket | null {
  let socket: UnixDgramSocket;
  try {
    socket = unixDgram.createSocket('unix_dgram');
  } catch {
    return null; // out of file descriptors: like no receiver, try later
  }
  // unix-dgram reports a failed connect as an 'error' event during the call: an object, so the
  // check after the call is not narrowed away.
  const connecting = { failed: false };
  socket.on('error', () => {
    connecting.failed = true;
  });
  socket.connect(path);
  if (connecting.failed) {
    closeQuietly(socket);
    return null;
  }
  socket.on('writable', onWritable);
  return { send: (datagram) => sendOn(socket, datagram), close: () => closeQuietly(socket) };
}

function sendOn(socket: UnixDgramSocket, datagram: Buffer): SendOutcome {
  let code = 0;
  socket.send(datagram, (error) => {
    code = error ? (error.code ?? -errno.EIO) : 0;
  });
  if (code === 0) return 'sent';
  if (code === CONGESTION) return 'congested';
  if (-code === errno.EMSGSIZE) return 'too-large';
  return DISCONNECTED.has(-code) ? 'disconnected' : 'refused';
}

function closeQuietly(socket: UnixDgramSocket): void {
  try {
    socket.close();
  } catch {
    // already closed, or EBADF: the descriptor is gone either way
  }
}
