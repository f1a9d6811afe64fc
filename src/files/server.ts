/**
 * The files service's side of the socket: a connection is one request — a JSON line — and its
 * answer: a JSON line, then for a read the file's bytes. Anything but a valid request is answered
 * with a refusal, and nothing is opened for it.
 */
import type { Server, Socket } from 'node:net';
import { pipeline } from 'node:stream';
import type { Logger } from 'pino';
import { describeIssues, messageOf } from '../errors.js';
import { readFirstLine } from '../line-socket.js';
import { FilesRequestSchema, REQUEST_LINE_BYTES, type FilesReply, type FilesRequest } from './protocol.js';
import { FilesError, type TaskFiles } from './task-files.js';

/** How long a connection may take to send its request line. */
const REQUEST_TIMEOUT_MS = 10_000;

export class FilesServer {
  private readonly open = new Set<Socket>();

  constructor(
    private readonly files: TaskFiles,
    private readonly log: Logger,
  ) {}

  serve(server: Server): void {
    server.on('connection', (socket) => void this.accept(socket));
  }

  /** Ends every connection (a read under way stops). */
  close(): void {
    for (const socket of this.open) socket.destroy();
  }

  private async accept(socket: Socket): Promise<void> {
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    socket.on('error', (error) => this.log.debug({ err: error }, 'files connection error'));
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    let line: unknown;
    try {
      line = await readFirstLine(socket, REQUEST_LINE_BYTES);
    } catch (error) {
      this.log.warn({ err: error }, 'files: not a request; connection closed');
      socket.destroy();
      return;
    }
    socket.setTimeout(0);
    const request = FilesRequestSchema.safeParse(line);
    if (!request.success) {
      this.answer(socket, { ok: false, error: { code: 'INVALID_REQUEST', message: describeIssues(request.error, 'request').join('; ') } });
      return;
    }
    try {
      await this.handle(socket, request.data);
    } catch (error) {
      if (error instanceof FilesError) {
        const size = error.size === undefined ? {} : { size: error.size };
        this.answer(socket, { ok: false, error: { code: error.code, message: error.message, ...size } });
        return;
      }
      this.log.error({ err: error, taskId: request.data.taskId, op: request.data.op }, 'files: the request failed');
      this.answer(socket, { ok: false, error: { code: 'INTERNAL', message: messageOf(error) } });
    }
  }

  private async handle(socket: Socket, request: FilesRequest): Promise<void> {
    switch (request.op) {
      case 'list': {
        const listing = await this.files.list(request.taskId, { maxEntries: request.maxEntries, maxDepth: request.maxDepth });
        this.answer(socket, { ok: true, listing });
        return;
      }
      case 'remove': {
        const removed = await this.files.remove(request.taskId);
        this.log.info({ taskId: request.taskId, removed }, "a task's working directory removed");
        this.answer(socket, { ok: true, removed });
        return;
      }
      case 'read': {
        const { range, ...rest } = request;
        const download = await this.files.read({ ...rest, ...(range ? { range } : {}) });
        const { body, ...file } = download;
        socket.write(`${JSON.stringify({ ok: true, file } satisfies FilesReply)}\n`);
        // The runner going away (its client did) ends the reading; a short file ends the connection early.
        pipeline(body, socket, (error) => {
          if (error) this.log.debug({ err: error, taskId: request.taskId }, 'files: a read ended early');
        });
        return;
      }
      default: {
        const never: never = request;
        throw new Error(`unknown request ${JSON.stringify(never)}`);
      }
    }
  }

  private answer(socket: Socket, reply: FilesReply): void {
    socket.end(`${JSON.stringify(reply)}\n`);
  }
}
