/**
 * The runner's side of the files service: a connection a request, the answer's JSON line, then for
 * a read the file's bytes, streamed as they come and checked to be exactly as many as announced.
 */
import { createConnection, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { readFirstLine } from '../line-socket.js';
import { messageOf } from '../errors.js';
import { exactLength } from './exact-length.js';
import type { FilesReply, FilesRequest } from './protocol.js';
import {
  FilesError,
  isFilesErrorCode,
  type FileDownload,
  type FileListing,
  type ListLimits,
  type ReadRequest,
  type TaskFiles,
} from './task-files.js';

/** A listing of the most entries the service lists is a few MiB of JSON; nothing it says is longer. */
const ANSWER_LINE_BYTES = 64 * 1024 * 1024;

type Answer<K extends string> = Extract<FilesReply, Record<K, unknown>>;

export class FilesClient implements TaskFiles {
  private readonly sockets = new Set<Socket>();

  constructor(readonly socketPath: string) {}

  async list(taskId: string, limits: ListLimits): Promise<FileListing> {
    const { reply, socket } = await this.ask({ op: 'list', taskId, ...limits });
    socket.destroy();
    return (expect(reply, 'listing') as Answer<'listing'>).listing;
  }

  async read(request: ReadRequest): Promise<FileDownload> {
    const { range, ...rest } = request;
    const { reply, socket } = await this.ask({ op: 'read', ...rest, ...(range ? { range } : {}) });
    let file: Answer<'file'>['file'];
    try {
      ({ file } = expect(reply, 'file') as Answer<'file'>);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    const body = exactLength(file.length);
    pipeline(socket, body, () => undefined);
    return { ...file, body };
  }

  async remove(taskId: string): Promise<boolean> {
    const { reply, socket } = await this.ask({ op: 'remove', taskId });
    socket.destroy();
    return (expect(reply, 'removed') as Answer<'removed'>).removed;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private async ask(request: FilesRequest): Promise<{ reply: unknown; socket: Socket }> {
    const socket = createConnection(this.socketPath);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.write(`${JSON.stringify(request)}\n`);
      return { reply: await readFirstLine(socket, ANSWER_LINE_BYTES), socket };
    } catch (error) {
      socket.destroy();
      throw new FilesError('FILES_UNAVAILABLE', `the files service at ${this.socketPath} did not answer: ${describe(error)}`);
    }
  }
}

/** The answer's `key` when it is a success; its refusal as a FilesError otherwise. */
function expect(reply: unknown, key: 'listing' | 'file' | 'removed'): FilesReply {
  const answer = reply as Partial<Record<string, unknown>> | null;
  if (answer?.['ok'] === true && answer[key] !== undefined) return answer as FilesReply;
  const error = answer?.['error'] as { code?: unknown; message?: unknown; size?: unknown } | undefined;
  if (answer?.['ok'] === false && isFilesErrorCode(error?.code) && typeof error.message === 'string') {
    throw new FilesError(error.code, error.message, typeof error.size === 'number' ? error.size : undefined);
  }
  throw new Error(`the files service answered ${typeof error?.message === 'string' ? error.message : 'what is not an answer'}`);
}

function describe(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? messageOf(error);
}
