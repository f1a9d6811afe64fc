import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import type { TaskService } from '../tasks/service.js';
import { HttpError, errorHandler } from './errors.js';
import { apiSchema } from './schema.js';
import { tasksRouter } from './tasks-routes.js';

export const API_VERSION = '1.0.0';
export const API_MIN_VERSION = '0.0.0';

export function createApp(tasks: TaskService, log: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(pinoHttp({ logger: log, quietReqLogger: true, autoLogging: { ignore: (request) => request.method === 'GET' } }));

  app.get('/', (_request, response) => {
    response.json({
      name: 'task_runner',
      apis: [{ root: '/v1', version: API_VERSION, min_version: API_MIN_VERSION }],
    });
  });

  const v1 = express.Router();
  v1.get('/', (_request, response) => {
    response.json({ success: true });
  });
  v1.get('/schema', (_request, response) => {
    response.json(apiSchema());
  });
  v1.use('/tasks', tasksRouter(tasks));
  app.use('/v1', v1);

  app.use((request, _response, next) => {
    next(new HttpError(404, 'NOT_FOUND', `no such endpoint: ${request.method} ${request.path}`));
  });
  app.use(errorHandler);
  return app;
}
