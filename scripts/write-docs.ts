/** npm run docs: writes the configuration reference into README.md and tessia-task-runner.yaml(5). */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GENERATED_DOCUMENTS, regenerated } from './config-reference/documents.js';

for (const document of GENERATED_DOCUMENTS) {
  const before = readFileSync(document.file, 'utf8');
  const after = regenerated(document, before);
  if (after !== before) writeFileSync(document.file, after);
  process.stdout.write(`${after === before ? 'unchanged' : 'wrote'} ${fileURLToPath(document.file)}\n`);
}
