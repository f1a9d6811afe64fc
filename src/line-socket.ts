/**
 * What the privileged helpers (the starter, the files service) and their clients in the runner
 * share: a listening socket (the one systemd passes, or a path root's alone when started by hand)
 * and JSON documents one a line, each line bounded.
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { activationFds } from './systemd/activation.js';

/** The socket systemd passes (its unit's .socket), else `socketPath`, made root's alone. */
export async function listenForRunner(socketPath: string | undefined, socketUnit: string, maxConnections: number): Promise<Server> {
  const server = createServer();
  server.maxConnections = maxConnections;
  const [fd] = activationFds();
  if (fd !== undefined) {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd }, resolve));
  } else if (socketPath !== undefined) {
    await rm(socketPath, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
    // Root's alone when started by hand; the packaged socket unit gives the runner's group access.
    await chmod(socketPath, 0o600);
  } else {
    throw new Error(`no socket: start it through ${socketUnit}, or give --socket PATH`);
  }
  return server;
}

export interface LineHandlers {
  /** The longest line accepted, in bytes (read at each chunk: a reload may change it). */
  limit: () => number;
  onLine: (line: string) => void;
  /** A line (or what came of it so far) is over the limit: nothing more is read. */
  onOverflow?: (limit: number) => void;
}

/** Calls `onLine` for each line that arrives on `socket` (UTF-8, without its newline). */
export function splitLines(socket: Socket, handlers: LineHandlers): void {
  let buffered = '';
  socket.setEncoding('utf8');
  const onData = (chunk: string) => {
    buffered += chunk;
    const limit = handlers.limit();
    for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (Buffer.byteLength(line) > limit) {
        overflow(limit);
        return;
      }
      handlers.onLine(line);
      if (socket.destroyed) return;
    }
    if (Buffer.byteLength(buffered) > limit) overflow(limit);
  };
  const overflow = (limit: number) => {
    socket.off('data', onData);
    handlers.onOverflow?.(limit);
  };
  socket.on('data', onData);
}

/**
 * The first line on `socket` (at most `limit` bytes), parsed as JSON; the socket is left paused
 * just after it, with whatever followed the newline put back, so that the bytes after the line
 * can be read as a stream of their own.
 */
export function readFirstLine(socket: Socket, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | undefined, value?: unknown) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      const end = chunk.indexOf(0x0a);
      if (end === -1) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > limit) done(new Error(`a line longer than ${limit} bytes`));
        return;
      }
      if (size + end > limit) {
        done(new Error(`a line longer than ${limit} bytes`));
        return;
      }
      socket.pause();
      chunks.push(chunk.subarray(0, end));
      const rest = chunk.subarray(end + 1);
      if (rest.length > 0) socket.unshift(rest);
      try {
        done(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        done(new Error('a line that is not JSON'));
      }
    };
    const onEnd = () => done(new Error('the connection ended before a whole line'));
    const onError = (error: Error) => done(error);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}
