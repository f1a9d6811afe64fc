/** The runner itself: discovery, probes, metrics, and the descriptions of the API. */
import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { ANY_REQUEST, AUTHENTICATED, errorBody, errorResponses } from './errors.js';
import { ApiSchema, Health, OpenApiDocument, Readiness, ServiceRoot, Success } from './responses.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

/** Open to anyone who reaches the runner, like probes must be. */
const OPEN: [] = [];

const readinessErrors = errorResponses(ANY_REQUEST);

export const servicePaths: ZodOpenApiPathsObject = {
  '/': {
    get: {
      operationId: 'getRoot',
      tags: ['service'],
      summary: 'Which APIs this service offers (tessia-mesh discovery)',
      security: OPEN,
      responses: { '200': { description: 'the service and its API versions', content: json(ServiceRoot) }, ...errorResponses(ANY_REQUEST) },
    },
  },
  '/healthz': {
    get: {
      operationId: 'getHealth',
      tags: ['service'],
      summary: 'Liveness: the process answers',
      security: OPEN,
      responses: { '200': { description: 'alive', content: json(Health) }, ...errorResponses(ANY_REQUEST) },
    },
  },
  '/readyz': {
    get: {
      operationId: 'getReadiness',
      tags: ['service'],
      summary: 'Readiness: D-Bus connected and the store writable',
      security: OPEN,
      responses: {
        '200': { description: 'ready', content: json(Readiness) },
        ...readinessErrors,
        '503': {
          ...readinessErrors['503'],
          description: `not ready (a Readiness body naming what is missing), or ${readinessErrors['503']?.description ?? ''}`,
          // The probe's own 503 says nothing of when to come back: only the shutdown's has Retry-After.
          headers: z.object({ 'Retry-After': z.string().regex(/^\d+$/).optional().meta({ description: 'with SHUTTING_DOWN' }) }),
          content: json(z.union([Readiness, errorBody(['SHUTTING_DOWN'])])),
        },
      },
    },
  },
  '/metrics': {
    get: {
      operationId: 'getMetrics',
      tags: ['service'],
      summary: 'Prometheus metrics: tasks by state, starts, stops, start latency, streams, D-Bus reconnects',
      responses: {
        '200': {
          description: 'Prometheus text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8)',
          content: { 'text/plain': { schema: z.string() } },
        },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED),
      },
    },
  },
  '/v1': {
    get: {
      operationId: 'getV1Root',
      tags: ['api'],
      summary: 'The v1 API root (tessia-compatible)',
      responses: { '200': { description: 'the API is there', content: json(Success) }, ...errorResponses(ANY_REQUEST, AUTHENTICATED) },
    },
  },
  '/v1/schema': {
    get: {
      operationId: 'getSchema',
      tags: ['api'],
      summary: "The API's paths and what they do (tessia-compatible)",
      responses: {
        '200': { description: 'by path, then method', content: json(ApiSchema) },
        ...errorResponses(ANY_REQUEST, AUTHENTICATED),
      },
    },
  },
  '/v1/openapi.json': {
    get: {
      operationId: 'getOpenApi',
      tags: ['api'],
      summary: 'This OpenAPI 3.1 document',
      responses: { '200': { description: 'the document', content: json(OpenApiDocument) }, ...errorResponses(ANY_REQUEST, AUTHENTICATED) },
    },
  },
};
