/**
 * A task's working directory over HTTP: GET …/files lists it, GET …/files/{path…} downloads one
 * file (one byte range at most), also after the task has ended, for as long as its record exists.
 * The path's segments are checked here for a clear 400, and again by whoever opens the file.
 */
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { Router, type Request, type Response } from 'express';
import type { TaskService } from '../tasks/service.js';
import { splitFilePath } from '../files/file-paths.js';
import { FilesError, type TaskFiles } from '../files/task-files.js';
import { parseRangeHeader } from './range-header.js';

export interface FilesRouteOptions {
  files: TaskFiles;
  limits: { maxFileEntries: number; maxFileDepth: number; maxFileBytes: number };
}

export function filesRouter(tasks: TaskService, options: FilesRouteOptions): Router {
  const router = Router({ mergeParams: true });
  const { files, limits } = options;

  router.get('/', async (request: Request<{ taskId: string }>, response: Response) => {
    const { taskId } = tasks.get(request.params.taskId);
    const listing = await files.list(taskId, { maxEntries: limits.maxFileEntries, maxDepth: limits.maxFileDepth });
    response.set('Cache-Control', 'no-store').json(listing);
  });

  // Express decodes each segment: "%2e%2e" becomes a ".." (refused), and "%2F" a "/" — taken as the
  // separator it encodes, since a generated client encodes the whole path as one parameter. Every
  // component is then checked alike: "..%2F.." is still two ".." and refused.
  router.get('/*path', async (request: Request<{ taskId: string; path: string[] }>, response: Response) => {
    const { taskId } = tasks.get(request.params.taskId);
    const path = splitFilePath(request.params.path.join('/')).join('/');
    const range = parseRangeHeader(request.get('range'), request.get('if-range'));
    let download;
    try {
      download = await files.read({ taskId, path, maxBytes: limits.maxFileBytes, ...(range ? { range } : {}) });
    } catch (error) {
      if (error instanceof FilesError && error.size !== undefined) response.set('Content-Range', `bytes */${error.size}`);
      throw error;
    }
    const { body, start, length, size } = download;
    response.status(download.partial ? 206 : 200);
    response.attachment(basename(path));
    response.set({
      // Whatever the name says: the bytes are the task's, never a page of the runner's origin.
      'Content-Type': 'application/octet-stream',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'Content-Length': String(length),
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-store',
      'Last-Modified': new Date(download.modified).toUTCString(),
    });
    if (download.partial) response.set('Content-Range', `bytes ${start}-${start + length - 1}/${size}`);
    if (request.method === 'HEAD') {
      // The headers only: the file is not read (a HEAD would otherwise read it whole for nothing).
      body.destroy();
      response.end();
      return;
    }
    // A short file (shrunk while read) or a lost files service ends the response early: the client
    // sees fewer bytes than Content-Length, never a short answer passed off as whole.
    pipeline(body, response, (error) => {
      if (error && !response.destroyed) response.destroy(error);
    });
  });

  return router;
}
