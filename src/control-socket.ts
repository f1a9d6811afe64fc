/**
 * The runner's local control interface: a Unix socket in its RuntimeDirectory that only its own user
 * (and root) can open, over which `tessia-task-runner reload` asks for a reload and waits for the
 * result — how `systemctl reload` learns that a reload was refused (ExecReload=, see the service unit).
 * One request a connection: a line `{"command":"reload"}`, answered with one line
 * `{"ok":true|false,"message":"…"}` once the reload is done or refused.
 */
import { once } from 'node:events';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { messageOf } from './errors.js';

export const CONTROL_SOCKET_NAME = 'control.sock';

export interface ControlAnswer {
  ok: boolean;
  message: string;
}

export interface ControlHandlers {
  /** Re-reads the config and applies it; resolves with what was applied, rejects with why not. */
  reload(): Promise<string>;
}

/** A request line longer than this is no request of ours. */
const MAX_REQUEST_BYTES = 1024;
/** A client that does not send its line this soon is dropped. */
const REQUEST_TIMEOUT_MS = 5000;

/** Listens on `path` (mode 0600, in a directory only the runner can enter); returns its close(). */
export async function openControlSocket(path: string, handlers: ControlHandlers): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await rm(path, { force: true });
  const server = createServer((socket) => serve(socket, handlers));
  server.listen(path);
  await once(server, 'listening');
  await chmod(path, 0o600);
  return async () => {
    server.close();
    await once(server, 'close');
  };
}

function serve(socket: Socket, handlers: ControlHandlers): void {
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  let received = '';
  const onData = (chunk: Buffer) => {
    received += chunk.toString('utf8');
    const end = received.indexOf('\n');
    if (end === -1) {
      if (received.length > MAX_REQUEST_BYTES) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.setTimeout(0);
    void answer(received.slice(0, end), handlers).then((reply) => socket.end(`${JSON.stringify(reply)}\n`));
  };
  socket.on('data', onData);
}

async function answer(line: string, handlers: ControlHandlers): Promise<ControlAnswer> {
  let command: unknown;
  try {
    command = (JSON.parse(line) as { command?: unknown } | null)?.command;
  } catch {
    return { ok: false, message: 'not a JSON request' };
  }
  if (command !== 'reload') return { ok: false, message: `unknown command ${JSON.stringify(command)}` };
  try {
    return { ok: true, message: await handlers.reload() };
  } catch (error) {
    return { ok: false, message: messageOf(error) };
  }
}

/** The client side: asks the runner listening on `path` to reload, and waits for its answer. */
export async function requestReload(path: string, timeoutMs: number): Promise<ControlAnswer> {
  const socket: Socket = connect(path);
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
  let text = '';
  socket.setEncoding('utf8');
  // Not end(): the runner answers on the same connection, then ends it.
  socket.write(`${JSON.stringify({ command: 'reload' })}\n`);
  for await (const chunk of socket as AsyncIterable<string>) {
    text += chunk;
    if (text.length > 64 * 1024) throw new Error("the answer is too long to be the runner's");
  }
  const reply = JSON.parse(text) as Partial<ControlAnswer>;
  if (typeof reply.ok !== 'boolean' || typeof reply.message !== 'string') throw new Error("the answer is not the runner's");
  return { ok: reply.ok, message: reply.message };
}
