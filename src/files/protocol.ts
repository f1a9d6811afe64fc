/**
 * What the runner may ask the files service, and what it answers, over a Unix stream socket only
 * root and the runner's group can open: one request a connection, a JSON line; the answer a JSON
 * line, and for a read exactly `length` raw bytes of the file after it; then the service closes.
 * A client that goes away ends the reading.
 *
 * The service takes no limit from its config: each request carries the runner's, and the schema
 * caps them, so a runner can ask for no more than these ceilings.
 */
import { z } from 'zod';
import { TASK_ID_PATTERN } from '../tasks/unit-names.js';
import { MAX_PATH_BYTES } from './file-paths.js';
import type { FileEntry, FilesErrorCode } from './task-files.js';

/** The ceilings of the limits a request carries (the config's own maxima). */
export const FILES_CEILINGS = { maxEntries: 100_000, maxDepth: 256, maxBytes: 2 ** 50 } as const;

/** A request line is small: a path, a range, the limits. */
export const REQUEST_LINE_BYTES = MAX_PATH_BYTES * 6 + 1024;

const taskId = z.string().regex(TASK_ID_PATTERN, 'must be 8 hex digits');
const offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const FilesRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('list'),
    taskId,
    maxEntries: z.number().int().min(1).max(FILES_CEILINGS.maxEntries),
    maxDepth: z.number().int().min(0).max(FILES_CEILINGS.maxDepth),
  }),
  z.strictObject({
    op: z.literal('read'),
    taskId,
    path: z.string().min(1).max(MAX_PATH_BYTES),
    range: z.union([z.strictObject({ start: offset, end: offset.optional() }), z.strictObject({ suffix: offset })]).optional(),
    maxBytes: z.number().int().min(1).max(FILES_CEILINGS.maxBytes),
  }),
  z.strictObject({ op: z.literal('remove'), taskId }),
]);
export type FilesRequest = z.infer<typeof FilesRequestSchema>;

export type FilesReply =
  | { ok: true; listing: { files: FileEntry[]; truncated: boolean } }
  | { ok: true; file: { size: number; modified: string; start: number; length: number; partial: boolean } }
  | { ok: true; removed: boolean }
  | { ok: false; error: { code: FilesErrorCode | 'INVALID_REQUEST' | 'INTERNAL'; message: string; size?: number } };
