/** npm run api:types: writes test/generated/openapi-types.ts from the API's OpenAPI document. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { API_TYPES_FILE, apiTypes } from './api-types.js';

writeFileSync(API_TYPES_FILE, await apiTypes());
process.stdout.write(`wrote ${fileURLToPath(API_TYPES_FILE)}\n`);
