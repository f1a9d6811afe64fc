import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/error-codes.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map([...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((match) => [match[1], Number(match[2])]));

describe('the error catalog', () => {
  it('has codes, and docs/errors.md documents as many as it has.', () => {
    assert.ok(Object.keys(ERROR_CODES).length >= 20);
    assert.equal(documented.size, Object.keys(ERROR_CODES).length);
  });

  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    it(`documents ${code} with status ${status}.`, () => {
      assert.equal(documented.get(code), status);
    });
  }

  it('gives every code a 4xx or 5xx status.', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) assert.ok(status >= 400 && status < 600, code);
  });
});
