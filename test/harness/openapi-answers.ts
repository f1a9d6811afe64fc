/**
 * Checks a real answer of the runner against its OpenAPI document: the status is one the operation
 * lists, the media type one that status lists, the body valid against that schema (JSON Schema
 * 2020-12, as OpenAPI 3.1 has it, with formats), and every header the document requires present
 * and valid. Throws an AssertionError that says what differs.
 */
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

interface MediaType {
  schema?: object;
}
interface Header {
  required?: boolean;
  schema?: object;
}
interface ResponseObject {
  headers?: Record<string, Header>;
  content?: Record<string, MediaType>;
}
interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, object> };
}

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON, the text, or one NDJSON line. */
  body?: unknown;
}

/** Components' $refs made to point into one registered schema, so each response schema compiles alone. */
const SHARED = 'openapi-components';
const rebased = <T>(schema: T): T => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${SHARED}#/$defs/`)) as T;

export function openApiAnswers(document: unknown) {
  const openApi = document as OpenApi;
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  formats.default(ajv);
  ajv.addSchema({ $id: SHARED, $defs: rebased(openApi.components.schemas) });
  const compiled = new Map<object, ValidateFunction>();
  const validate = (schema: object, value: unknown, what: string) => {
    let check = compiled.get(schema);
    if (!check) {
      check = ajv.compile(rebased(schema));
      compiled.set(schema, check);
    }
    assert.ok(check(value), `${what}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(value)}`);
  };

  /** The documented response of `method path` (a path of the document, e.g. /v1/tasks/{taskId}) with this status. */
  const responseOf = (path: string, method: string, status: number): ResponseObject => {
    const operation = openApi.paths[path]?.[method];
    assert.ok(operation, `${method.toUpperCase()} ${path} is described`);
    const response = operation.responses[String(status)];
    assert.ok(response, `${method.toUpperCase()} ${path} lists status ${status} (it lists ${Object.keys(operation.responses).join(', ')})`);
    return response;
  };

  return {
    /** Checks a value against a schema of the document's (e.g. { $ref: '#/components/schemas/Task' }). */
    validate,
    /** Checks the answer; `mediaType` defaults to the answer's Content-Type without its parameters. */
    check(path: string, method: string, answer: Answer, mediaType = answer.headers.get('content-type')?.split(';')[0]?.trim()): void {
      const what = `${method.toUpperCase()} ${path} ${answer.status}`;
      const response = responseOf(path, method, answer.status);
      for (const [name, header] of Object.entries(response.headers ?? {})) {
        const value = answer.headers.get(name);
        if (value === null) {
          assert.ok(!header.required, `${what}: the required header ${name} is missing`);
          continue;
        }
        if (header.schema) validate(header.schema, value, `${what}: header ${name}`);
      }
      if (answer.body === undefined) return;
      assert.ok(mediaType, `${what}: a body without a Content-Type`);
      const content = response.content?.[mediaType];
      assert.ok(content?.schema, `${what}: ${mediaType} is described (described: ${Object.keys(response.content ?? {}).join(', ')})`);
      validate(content.schema, answer.body, what);
    },
  };
}
