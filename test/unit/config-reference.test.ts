import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigSchema } from '../../src/config/schema.js';
import { GENERATED_DOCUMENTS, regenerated } from '../../scripts/config-reference/documents.js';
import { configKeys } from '../../scripts/config-reference/keys.js';
import { roffInline, roffText } from '../../scripts/config-reference/roff.js';

const MAN_PAGE = new URL('../../docs/man/tessia-task-runner.yaml.5', import.meta.url);

describe('the configuration reference', () => {
  it('in README.md and tessia-task-runner.yaml(5) is what the schema says now: npm run docs', () => {
    assert.equal(GENERATED_DOCUMENTS.length, 2);
    for (const document of GENERATED_DOCUMENTS) {
      assert.equal(readFileSync(document.file, 'utf8'), regenerated(document), `${document.file.pathname} is stale: npm run docs`);
    }
  });

  it('names every key of the schema, each with its description, its value and, unless it is a mapping, its default', () => {
    const keys = configKeys();
    const paths = keys.map((key) => key.path);
    assert.equal(new Set(paths).size, paths.length);
    // Every top-level key, and keys at each kind of depth: a mapping's, a list item's, a named entry's.
    assert.deepEqual(
      keys.filter((key) => key.depth === 0).map((key) => key.path),
      Object.keys(ConfigSchema.shape),
    );
    for (const path of [
      'limits.maxFileBytes',
      'auth.tokens[].sha256',
      'machines.<name>.sandbox.readWritePaths',
      'machines.<name>.tessia.class',
    ]) {
      assert.ok(paths.includes(path), path);
    }
    for (const key of keys) {
      assert.ok(key.description.length > 10, key.path);
      assert.ok(key.value, key.path);
      if (!key.value.includes('keys below')) assert.ok(key.default, `${key.path} has no default`);
    }
    const byPath = new Map(keys.map((key) => [key.path, key]));
    assert.equal(byPath.get('machines.<name>.limits.stopGraceSec')?.value, 'a number of seconds, from 0.001 to 3600');
    assert.equal(byPath.get('machines.<name>.limits.stopGraceSec')?.default, '`60`');
    assert.equal(byPath.get('limits.maxBodyBytes')?.default, '`1048576` (1 MiB)');
    assert.equal(byPath.get('machines.<name>.limits.tasksMax')?.value, 'an integer, above 0, or `null`: no limit');
    assert.equal(byPath.get('tls.cert')?.default, 'required');
    assert.equal(byPath.get('machines')?.reload, 'applied');
    assert.equal(byPath.get('listen')?.reload, 'restart');
  });

  it('refuses a key without a description, and an example it could not show whole', () => {
    assert.throws(() => configKeys(z.strictObject({ a: z.number().default(1) })), /^Error: a: no description/);
    const listed = z.strictObject({
      list: z.array(z.strictObject({ b: z.string().meta({ description: 'b', examples: ['x'] }) })).meta({ description: 'a list' }),
    });
    assert.throws(() => configKeys(listed), /list\[\]\.b: an example where no whole config can show it/);
  });

  it("has examples that are valid configs, the machines' three kinds among them", () => {
    const examples = configKeys().flatMap((key) => key.examples);
    assert.ok(examples.length >= 4, `${examples.length} examples`);
    for (const example of examples) ConfigSchema.parse(example);
    const machines = configKeys().find((key) => key.path === 'machines')?.examples[0]?.['machines'] as Record<string, object>;
    const kinds = Object.values(machines).map((machine) => ['builtin', 'exec', 'tessia'].find((kind) => kind in machine));
    assert.deepEqual(kinds.sort(), ['builtin', 'exec', 'tessia']);
  });

  it("tessia-task-runner.yaml(5)'s EXAMPLES are valid configs", () => {
    const page = readFileSync(MAN_PAGE, 'utf8');
    const section = page.slice(page.indexOf('.SH EXAMPLES\n'), page.indexOf('\n.SH ', page.indexOf('.SH EXAMPLES\n') + 1));
    const blocks = [...section.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map(([, block]) => (block ?? '').replaceAll('\\-', '-'));
    assert.equal(blocks.length, 2);
    for (const block of blocks) ConfigSchema.parse(parse(block));
  });
});

describe('roff text', () => {
  it('escapes backslashes and hyphens, spells non-ASCII as glyphs, and never starts a request', () => {
    assert.equal(roffText('a\\b --x'), 'a\\eb \\-\\-x');
    assert.equal(roffText('1–124 → 429'), '1\\[u2013]124 \\[u2192] 429');
    assert.equal(roffText('.SH not a request'), '\\&.SH not a request');
    assert.equal(roffText("'br"), "\\&'br");
    assert.equal(roffInline('see `limits.maxActive` here'), 'see \\fBlimits.maxActive\\fR here');
  });
});
