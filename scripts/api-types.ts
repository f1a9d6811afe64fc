/**
 * The TypeScript types a client generates from the API's OpenAPI document (openapi-typescript), as
 * the repository keeps them in test/generated/openapi-types.ts: `npm run api:types` writes them, a
 * unit test fails when they are not those of the current document, and the integration test
 * (openapi-client.test.ts) drives the running runner through them with openapi-fetch.
 */
import openapiTS, { COMMENT_HEADER, astToString, type OpenAPI3 } from 'openapi-typescript';
import { API_VERSION } from '../src/api/app.js';
import { openApiDocument } from '../src/api/openapi/document.js';

export const API_TYPES_FILE = new URL('../test/generated/openapi-types.ts', import.meta.url);

/** `document`: the one the runner serves, by default. */
export async function apiTypes(document: object = openApiDocument(API_VERSION)): Promise<string> {
  const ast = await openapiTS(document as OpenAPI3, { silent: true });
  return `${COMMENT_HEADER}// The types of the runner's API (GET /v1/openapi.json); written by \`npm run api:types\`.\n\n${astToString(ast)}`;
}
