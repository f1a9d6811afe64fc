import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Request, Response } from 'express';
import { limitJsonDepth } from '../../src/api/body-limits.js';
import { HttpError } from '../../src/api/errors.js';
import { statusOf } from '../../src/error-codes.js';

/** What limitJsonDepth(maxDepth) passes to next() for this body: undefined when it lets it through. */
function check(body: unknown, maxDepth: number): unknown {
  let calls = 0;
  let passed: unknown;
  limitJsonDepth(maxDepth)({ body } as Request, {} as Response, (error?: unknown) => {
    calls += 1;
    passed = error;
  });
  assert.equal(calls, 1, 'the middleware must call next exactly once');
  return passed;
}

function assertTooDeep(error: unknown, maxDepth: number): void {
  assert.ok(error instanceof HttpError, `expected an HttpError, got ${String(error)}`);
  assert.equal(error.code, 'TOO_DEEP');
  assert.equal(statusOf(error.code), 400);
  assert.match(error.message, new RegExp(`deeper than ${maxDepth} levels`));
}

/** Arrays nested `depth` levels deep: [[[]]] is 3. Built without recursion. */
function nestedArrays(depth: number): unknown {
  let value: unknown[] = [];
  for (let level = 1; level < depth; level += 1) value = [value];
  return value;
}

/** Objects nested `depth` levels deep: {"a":{"a":{}}} is 3. */
function nestedObjects(depth: number): unknown {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < depth; level += 1) value = { a: value };
  return value;
}

describe('limitJsonDepth', () => {
  it('lets through a body nested exactly maxDepth levels.', () => {
    assert.equal(check(nestedArrays(8), 8), undefined);
    assert.equal(check(nestedObjects(8), 8), undefined);
  });

  it('refuses a body nested one level more than maxDepth with 400 TOO_DEEP.', () => {
    assertTooDeep(check(nestedArrays(9), 8), 8);
    assertTooDeep(check(nestedObjects(9), 8), 8);
  });

  it('counts arrays and objects mixed as levels alike.', () => {
    assert.equal(check({ parameters: [{ a: [] }] }, 4), undefined);
    assertTooDeep(check({ parameters: [{ a: [[]] }] }, 4), 4);
  });

  it('counts no level for scalar values.', () => {
    assert.equal(check({ machine: 'echo', parameters: ['echo hi', 1, true, null] }, 2), undefined);
  });

  it('lets through a body that is no object: none at all, a string, a number, null.', () => {
    for (const body of [undefined, 'text', 42, null]) assert.equal(check(body, 2), undefined);
  });

  it('finds a deep branch anywhere, not only in the first or last member.', () => {
    const deep = nestedObjects(5);
    assertTooDeep(check({ first: {}, middle: { deep }, last: [] }, 5), 5);
    assertTooDeep(check([[], [deep], []], 5), 5);
  });

  it('lets through a wide but shallow body.', () => {
    const wide = { parameters: Array.from({ length: 100_000 }, (_, index) => ({ line: `echo ${index}` })) };
    assert.equal(check(wide, 3), undefined);
  });

  it('refuses a body nested a million levels deep.', () => {
    assertTooDeep(check(nestedArrays(1_000_000), 64), 64);
  });
});
