/**
 * The OpenAPI document: Redocly's recommended lint passes clean, every route the app serves is in it
 * (and only those), the committed client types are up to date, and the response schemas have the
 * types of what the routes send (checked by the compiler: see the end of this file).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import type { Express } from 'express';
import { pino } from 'pino';
import type { z } from 'zod';
import { API_TYPES_FILE, apiTypes } from '../../scripts/api-types.js';
import { API_VERSION, createApp } from '../../src/api/app.js';
import type { apiSchema } from '../../src/api/schema.js';
import type { fullView, machineView } from '../../src/api/views.js';
import { LICENSE, openApiDocument } from '../../src/api/openapi/document.js';
import type { ApiSchema, BriefTask, MachineInfo, Task, TaskEventLine, TaskUsage } from '../../src/api/openapi/responses.js';
import type { TaskEvent, TaskUsage as ModelTaskUsage } from '../../src/tasks/model.js';
import type { TaskService } from '../../src/tasks/service.js';
import type { TaskBrief } from '../../src/tasks/store.js';
import { appOptionsForTests } from '../harness/app-options.js';

const document = openApiDocument(API_VERSION) as { paths: Record<string, Record<string, unknown>>; info: { license: { name: string } } };
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

/** The router internals the walk reads (express 5's router: Layer.rawPath, Route.methods). */
interface Layer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** `METHOD /path` of every route an express app serves, paths spelled as OpenAPI spells them (:name, *name: {name}). */
function servedOperations(stack: Layer[], prefix = ''): string[] {
  return stack.flatMap((layer) => {
    const toOpenApi = (path: string) => path.replace(/[:*](\w+)/g, '{$1}');
    if (layer.route) {
      const path = `${prefix}${layer.route.path === '/' ? '' : toOpenApi(layer.route.path)}` || '/';
      return Object.keys(layer.route.methods).map((method) => `${method} ${path}`);
    }
    const mounted = typeof layer.rawPath === 'string' ? toOpenApi(layer.rawPath) : '';
    return layer.handle.stack ? servedOperations(layer.handle.stack, `${prefix}${mounted === '/' ? '' : mounted}`) : [];
  });
}

function appOf(): Express {
  // Only the routes are read: nothing here is called.
  return createApp({} as TaskService, appOptionsForTests(), pino({ level: 'silent' }));
}

describe('the OpenAPI document', () => {
  test("passes Redocly's recommended lint with no error and no warning", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(document), absoluteRef: '/v1/openapi.json', config });
    assert.deepEqual(
      problems.map((problem) => `${problem.severity} ${problem.ruleId}: ${problem.message} (${problem.location[0]?.pointer ?? ''})`),
      [],
    );
  });

  test('the lint finds what the issue found in the document before it (the test can fail)', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const bare = { ...document, servers: undefined, info: { ...document.info, license: undefined } };
    const problems = await lintFromString({ source: JSON.stringify(bare), absoluteRef: '/v1/openapi.json', config });
    assert.deepEqual(problems.map((problem) => `${problem.severity} ${problem.ruleId}`).sort(), [
      'error no-empty-servers',
      'warn info-license',
    ]);
  });

  test('describes every route the app serves, and no other', () => {
    const router = (appOf() as unknown as { router: { stack: Layer[] } }).router;
    const served = servedOperations(router.stack).sort();
    const described = Object.entries(document.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((key) => METHODS.has(key))
          .map((method) => `${method} ${path}`),
      )
      .sort();
    assert.ok(served.length >= 16, served.join(', '));
    assert.deepEqual(described, served);
  });

  test('names every operation with a unique camelCase operationId, a summary and a tag', () => {
    const operations = Object.values(document.paths).flatMap((item) =>
      Object.entries(item)
        .filter(([key]) => METHODS.has(key))
        .map(([, operation]) => operation as { operationId: string; summary: string; tags: string[] }),
    );
    const ids = operations.map((operation) => operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    for (const operation of operations) {
      assert.match(operation.operationId, /^[a-z][a-zA-Z0-9]+$/);
      assert.ok(operation.summary, operation.operationId);
      assert.equal(operation.tags.length, 1, operation.operationId);
    }
    for (const id of ['listTasks', 'startTask', 'getTask', 'deleteTask', 'stopTask', 'streamTaskLogs', 'streamEvents', 'getOpenApi']) {
      assert.ok(ids.includes(id), id);
    }
  });

  test("has package.json's license", () => {
    const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { license: string };
    assert.equal(LICENSE, packageJson.license);
    assert.equal(document.info.license.name, packageJson.license);
  });

  test('the committed client types (test/generated/openapi-types.ts) are those of the document: npm run api:types', async () => {
    assert.equal(await apiTypes(document), readFileSync(API_TYPES_FILE, 'utf8'));
  });
});

// The response schemas have the types of what the routes send: each line fails to compile when they differ.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type ResponseSchemasAgree = [
  Expect<Same<z.infer<typeof Task>, ReturnType<typeof fullView>>>,
  Expect<Same<z.infer<typeof MachineInfo>, ReturnType<typeof machineView>>>,
  Expect<Same<z.infer<typeof TaskUsage>, ModelTaskUsage>>,
  Expect<Same<z.infer<typeof BriefTask>, TaskBrief>>,
  Expect<Same<Omit<z.infer<typeof TaskEventLine>, 'type'>, TaskEvent>>,
  Expect<ReturnType<typeof apiSchema> extends z.infer<typeof ApiSchema> ? true : false>,
];
