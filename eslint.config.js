// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeTest = { from: /** @type {const} */ ('package'), package: 'node:test', name: ['test', 'describe', 'it', 'suite'] };

export default tseslint.config(
  // test/generated/: written by npm run api:types (openapi-typescript), checked by a test.
  {
    ignores: [
      'dist/',
      '.state/',
      'coverage/',
      'node_modules/',
      'packaging/**/build/',
      'packaging/out/',
      'debian/',
      'obj-*/',
      'test/generated/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      // process.env['X'] and other index-signature reads stay visibly dynamic.
      '@typescript-eslint/dot-notation': ['error', { allowIndexSignaturePropertyAccess: true }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // node:test runs what test() and describe() return itself.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      // `text || fallback` is how an empty string (what systemd says for "none") is told apart.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true } }],
      // strictTypeChecked forbids `!`; this stylistic rule would ask for it.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' },
      ],
    },
  },
  {
    // What ships loads its code at start. An upgrade swaps the package's files under running processes
    // (the runner restarts only after the unpack, tasks never): a module imported later would come from
    // another release, or be gone (test/integration/package-upgrade.test.ts).
    files: ['src/**'],
    ignores: ['src/embedded/**', 'src/cli/serve.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'import at the top: an upgrade swaps files under a running process' },
      ],
    },
  },
  {
    // Tests, benchmarks and their launcher read JSON answers by shape and assert on them; typing every answer would
    // only restate the assertions.
    files: ['test/**', 'bench/**', 'src/embedded/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Stand-ins: async fakes of async interfaces, Node's request/response objects, trimmed fixtures.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-dynamic-delete': 'off',
    },
  },
  {
    // The Cockpit page runs in a browser, with cockpit.js's global (src/cockpit/cockpit.d.ts).
    files: ['src/cockpit/**'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  prettier,
);
