/** /v1/machines: the machines new tasks may run, for clients that offer a choice (the Cockpit page). */
import { Router } from 'express';
import type { TaskService } from '../tasks/service.js';
import { machineView } from './views.js';

export function machinesRouter(tasks: TaskService): Router {
  const router = Router();
  router.get('/', (_request, response) => {
    response.json(tasks.listMachines().map(machineView));
  });
  return router;
}
