/**
 * The package ships src/ without src/embedded (tsconfig.build.json), but `exclude` does not stop tsc from
 * compiling a file that shipped code imports: only this check keeps the launcher out of dist/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

const SRC = join(REPO_DIR, 'src');
const EMBEDDED = join(SRC, 'embedded');
const shipped = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts'))
  .map((file) => join(SRC, file))
  .filter((file) => !file.startsWith(`${EMBEDDED}/`));

/** Every relative module a file imports (static, dynamic, export … from), as absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)['"](\.[^'"]+)['"]/gm);
  return [...specifiers].map((match) => resolve(dirname(file), match[1] ?? ''));
}

describe('the shipped code', () => {
  const imports = shipped.flatMap((file) => importsOf(file).map((target) => ({ file: relative(REPO_DIR, file), target })));

  it('is found, with its relative imports.', () => {
    assert.ok(shipped.length >= 40, `only ${shipped.length} files under src/`);
    assert.ok(imports.length >= 100, `only ${imports.length} relative imports`);
  });

  it('imports nothing from src/embedded, test/ or bench/.', () => {
    const outside = [EMBEDDED, join(REPO_DIR, 'test'), join(REPO_DIR, 'bench')];
    const wrong = imports.filter(({ target }) => outside.some((dir) => target === dir || target.startsWith(`${dir}/`)));
    assert.deepEqual(
      wrong.map(({ file, target }) => `${file} → ${relative(REPO_DIR, target)}`),
      [],
    );
  });
});
