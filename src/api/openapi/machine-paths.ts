/** /v1/machines: what a task may run. */
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { ANY_REQUEST, AUTHENTICATED, errorResponses } from './errors.js';
import { MachineInfo } from './responses.js';

export const machinePaths: ZodOpenApiPathsObject = {
  '/v1/machines': {
    get: {
      operationId: 'listMachines',
      tags: ['machines'],
      summary: "The machines new tasks may run, in the config's order",
      description: "Names and descriptions from the config (as reloaded); a machine's command, environment and sandbox are not shown.",
      responses: {
        '200': { description: 'every machine', content: { 'application/json': { schema: z.array(MachineInfo) } } },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED),
      },
    },
  },
};
