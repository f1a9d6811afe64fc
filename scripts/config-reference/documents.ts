/**
 * The files that hold the configuration reference, each between a begin and an end marker line:
 * README.md (Markdown) and tessia-task-runner.yaml(5) (roff). `npm run docs` writes them
 * (write-docs.ts); test/unit/config-reference.test.ts fails when a committed one is not what this
 * writes now. Only the text between the markers is generated: what is around it is written by hand.
 */
import { readFileSync } from 'node:fs';
import { configKeys } from './keys.js';
import { markdownReference } from './markdown.js';
import { roffReference } from './roff.js';

export interface GeneratedDocument {
  file: URL;
  /** The marker lines; the reference goes between them. */
  begin: string;
  end: string;
  render: () => string;
}

export const GENERATED_DOCUMENTS: readonly GeneratedDocument[] = [
  {
    file: new URL('../../README.md', import.meta.url),
    begin: '<!-- config-reference:begin: written by `npm run docs` from src/config/schema.ts; edit the schema -->',
    end: '<!-- config-reference:end -->',
    render: () => markdownReference(configKeys()),
  },
  {
    file: new URL('../../docs/man/tessia-task-runner.yaml.5', import.meta.url),
    begin: '.\\" config-reference:begin',
    end: '.\\" config-reference:end',
    render: () => roffReference(configKeys()),
  },
];

/** The document's text as it is, with the reference between its markers as the schema says now. */
export function regenerated(document: GeneratedDocument, text = readFileSync(document.file, 'utf8')): string {
  const begin = text.indexOf(`${document.begin}\n`);
  const end = text.indexOf(`${document.end}\n`, begin);
  if (begin < 0 || end < 0 || text.includes(`${document.begin}\n`, begin + 1)) {
    throw new Error(`${document.file.pathname}: needs exactly one line "${document.begin}", then one "${document.end}"`);
  }
  return `${text.slice(0, begin + document.begin.length + 1)}${document.render()}${text.slice(end)}`;
}
