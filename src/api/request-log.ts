/**
 * Each request's logger (`request.log`, with its request id) and the line a change's request leaves
 * when it is answered ("request completed", with the request's and the answer's headers, redacted by
 * the root logger: src/log.ts). As pino-http wrote it, without what pino-http did for every request,
 * logged or not: a second child logger holding the whole request, serialized and redacted up front
 * (0.26 ms of a stop's path here: docs/benchmarks.md). The request is serialized only for a line
 * that is written.
 */
import type { NextFunction, Request, Response } from 'express';
import { pino, type Logger } from 'pino';

declare module 'node:http' {
  interface IncomingMessage {
    /** This request's logger: the runner's, with the request's id. */
    log: Logger;
    /** The request's id, in every line logged about it (reqId). */
    id: number;
  }
}

const { req, res, err } = pino.stdSerializers;
const SERIALIZERS = { req, res, err };
/** Request ids count up and wrap at 2^31, as pino-http's did: the same field, numbers of the same range. */
const MAX_REQUEST_ID = 0x7fff_ffff;

/** `logged`: whether a request leaves a line when answered (the runner's: every one but GET). */
export function requestLog(root: Logger, logged: (request: Request) => boolean) {
  const log = root.child({}, { serializers: SERIALIZERS });
  let lastId = 0;
  return (request: Request, response: Response, next: NextFunction): void => {
    lastId = (lastId + 1) & MAX_REQUEST_ID;
    request.id = lastId;
    request.log = log.child({ reqId: lastId });
    if (logged(request)) {
      const began = Date.now();
      const answered = (error?: Error) => {
        response.off('finish', answered);
        response.off('close', answered);
        response.off('error', answered);
        if (!request.log.isLevelEnabled('info')) return;
        const lines = request.log.child({ req: request });
        const responseTime = Date.now() - began;
        if (error || response.statusCode >= 500) {
          lines.info(
            { res: response, err: error ?? new Error(`failed with status code ${response.statusCode}`), responseTime },
            'request errored',
          );
          return;
        }
        lines.info(
          { res: response, responseTime },
          !request.readableAborted && response.writableEnded ? 'request completed' : 'request aborted',
        );
      };
      response.on('finish', answered);
      response.on('close', answered);
      response.on('error', answered);
    }
    next();
  };
}
