/** The configuration reference in Markdown, as README.md's "Configuration" holds it. */
import { exampleYaml } from './examples.js';
import type { ConfigKey } from './keys.js';

const RELOAD = { applied: 'A reload applies a change of it.', restart: 'A change of it needs a restart.' } as const;

/** The text of a key's list item: what it is, its value, its default, then its examples. */
function item(key: ConfigKey): string {
  const indent = '  '.repeat(key.depth);
  const facts = [`Value: ${key.value}.`, key.default === undefined ? '' : `Default: ${key.default}.`, key.reload ? RELOAD[key.reload] : '']
    .filter(Boolean)
    .join(' ');
  const lines = [`${indent}- \`${key.path}\`: ${key.description}`, `${indent}  ${facts}`];
  for (const example of key.examples) {
    const yaml = exampleYaml(example).trimEnd().split('\n');
    lines.push('', `${indent}  \`\`\`yaml`, ...yaml.map((line) => `${indent}  ${line}`), `${indent}  \`\`\``, '');
  }
  return lines.join('\n');
}

export function markdownReference(keys: readonly ConfigKey[]): string {
  return `${keys
    .map(item)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')}\n`;
}
