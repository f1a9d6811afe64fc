import compression from 'compression';
import { constants as zlibConstants } from 'node:zlib';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TaskLogs } from '../tasks/logs.js';
import type { TaskService } from '../tasks/service.js';
import { authenticate, authorize, type AuthOptions } from './auth.js';
import { HttpError, errorHandler } from './errors.js';
import { checkHost, checkOrigin, jsonBodiesOnly, type PolicySource } from './request-policy.js';
import { requestLog } from './request-log.js';
import { apiSchema } from './schema.js';
import { tasksRouter } from './tasks-routes.js';
import { eventsRouter } from './events-route.js';
import { machinesRouter } from './machines-route.js';
import { filesRouter, type FilesRouteOptions } from './files-route.js';
import { openApiDocument } from './openapi/document.js';
import type { TaskFiles } from '../files/task-files.js';

export const API_VERSION = '1.0.0';
const API_MIN_VERSION = '0.0.0';

export interface Health {
  /** Ready to serve: D-Bus connected and the store writable (recovery is done before anyone can ask); else what is missing. */
  readiness(): { ready: boolean; checks: Record<string, boolean> };
  metrics: Registry;
}

export interface AppOptions {
  health: Health;
  logs: TaskLogs;
  /** Read at each request: a reload replaces the tokens. */
  auth: () => AuthOptions;
  /** The runner's names and the origins that may call (read at each request, like auth). */
  policy: PolicySource;
  limits: { maxBodyBytes: number; maxJsonDepth: number; maxLogStreams: number; maxEventStreams: number } & FilesRouteOptions['limits'];
  /** Tasks' working directories (through the files service, or read in this process). */
  files: TaskFiles;
  heartbeatMs: number;
  /** Aborted when the runner shuts down: new requests get 503, log streams end resumably. */
  shuttingDown: AbortSignal;
  onStream?: (delta: 1 | -1) => void;
}

export function createApp(tasks: TaskService, options: AppOptions, log: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // A line for each request that may change something; reads leave none.
  app.use(requestLog(log, (request) => request.method !== 'GET'));
  // Browsers: refused before anything else reads the request (request-policy.ts).
  app.use(checkHost(options.policy), checkOrigin(options.policy));

  // JSON answers compressed when worth it; log streams do it themselves (see logs-route).
  // Event streams are never compressed: compression would hold each event back until its buffer fills.
  // At each encoding's fastest setting (gzip's is nginx's default): the default list of 10 000
  // tasks in 72 KB against 60 KB at gzip's default level, for two thirds of its CPU; in 66 KB by
  // brotli, for 40 % of the CPU of the middleware's default quality (docs/benchmarks.md).
  app.use(
    compression({
      level: zlibConstants.Z_BEST_SPEED,
      brotli: { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: zlibConstants.BROTLI_MIN_QUALITY } },
      filter: (request, response) =>
        !request.path.endsWith('/logs') && !request.path.startsWith('/v1/events') && compression.filter(request, response),
    }),
  );

  app.use((_request, response, next) => {
    if (!options.shuttingDown.aborted) {
      next();
      return;
    }
    response.set('Connection', 'close');
    next(new HttpError('SHUTTING_DOWN', 'the runner is shutting down; tasks keep running, try again shortly'));
  });
  app.use(jsonBodiesOnly);

  // Liveness and readiness: open, like GET /, for probes.
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/readyz', (_request, response) => {
    const { ready, checks } = options.health.readiness();
    response.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', authenticate(options.auth), authorize, async (_request, response) => {
    response.type(options.health.metrics.contentType).send(await options.health.metrics.metrics());
  });

  app.get('/', (_request, response) => {
    response.json({
      name: 'task_runner',
      apis: [{ root: '/v1', version: API_VERSION, min_version: API_MIN_VERSION }],
    });
  });

  const v1 = express.Router();
  v1.use(authenticate(options.auth), authorize);
  v1.get('/', (_request, response) => {
    response.json({ success: true });
  });
  v1.get('/schema', (_request, response) => {
    response.json(apiSchema());
  });
  v1.get('/openapi.json', (_request, response) => {
    response.json(openApiDocument(API_VERSION));
  });
  v1.use('/tasks/:taskId/files', filesRouter(tasks, { files: options.files, limits: options.limits }));
  v1.use(
    '/tasks',
    tasksRouter(tasks, options.logs, {
      heartbeatMs: options.heartbeatMs,
      shuttingDown: options.shuttingDown,
      maxBodyBytes: options.limits.maxBodyBytes,
      maxJsonDepth: options.limits.maxJsonDepth,
      maxLogStreams: options.limits.maxLogStreams,
      ...(options.onStream ? { onStream: options.onStream } : {}),
    }),
  );
  v1.use('/machines', machinesRouter(tasks));
  v1.use(
    '/events',
    eventsRouter(tasks, {
      heartbeatMs: options.heartbeatMs,
      maxEventStreams: options.limits.maxEventStreams,
      shuttingDown: options.shuttingDown,
    }),
  );
  app.use('/v1', v1);

  app.use((request, _response, next) => {
    next(new HttpError('NOT_FOUND', `no such endpoint: ${request.method} ${request.path}`));
  });
  app.use(errorHandler);
  return app;
}
