/**
 * A task's files (files-route.ts): its working directory listed, and one regular file read whole or
 * one byte range of it, also after the task has ended, through the files service.
 */
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { ANY_REQUEST, AUTHENTICATED, errorResponses } from './errors.js';
import { FileListing } from './responses.js';
import { TaskIdPath } from './task-paths.js';

const FilePath = TaskIdPath.extend({
  path: z.string().meta({
    description:
      'the file, relative to the working directory, its segments separated by slashes (plain or encoded as %2F, as a client that encodes the parameter whole sends them); no empty, "." or ".." segment',
  }),
});

const Bytes = { 'application/octet-stream': { schema: z.string().meta({ contentMediaType: 'application/octet-stream' }) } };

const download = {
  'Content-Disposition': z.string().meta({ description: 'attachment; filename="<the file\'s name>"' }),
  'Accept-Ranges': z.literal('bytes'),
  'Last-Modified': z.string().meta({ description: "the file's modification time (HTTP date)" }),
};

const READ_ERRORS = errorResponses(ANY_REQUEST, AUTHENTICATED, [
  'TASK_NOT_FOUND',
  'INVALID_FILE_PATH',
  'NOT_A_FILE',
  'FILE_NOT_FOUND',
  'FILE_TOO_LARGE',
  'RANGE_NOT_SATISFIABLE',
  'FILES_UNAVAILABLE',
]);

export const filePaths: ZodOpenApiPathsObject = {
  '/v1/tasks/{taskId}/files': {
    get: {
      operationId: 'listTaskFiles',
      tags: ['files'],
      summary: "List the task's working directory: its regular files and directories (also after it ended)",
      requestParams: { path: TaskIdPath },
      responses: {
        '200': { description: 'the files; none when the task left nothing', content: { 'application/json': { schema: FileListing } } },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED, ['TASK_NOT_FOUND', 'FILES_UNAVAILABLE']),
      },
    },
  },
  '/v1/tasks/{taskId}/files/{path}': {
    get: {
      operationId: 'getTaskFile',
      tags: ['files'],
      summary: "Download one regular file of the task's working directory, whole or one byte range",
      requestParams: {
        path: FilePath,
        header: z.object({
          Range: z
            .string()
            .optional()
            .meta({ description: 'one range: bytes=a-b, a- or -n (anything else, or with If-Range: the whole file)' }),
        }),
      },
      responses: {
        '200': { description: 'the whole file', headers: z.object(download), content: Bytes },
        '206': {
          description: 'the range asked for',
          headers: z.object({ ...download, 'Content-Range': z.string().regex(/^bytes \d+-\d+\/\d+$/) }),
          content: Bytes,
        },
        ...READ_ERRORS,
      },
    },
  },
};
