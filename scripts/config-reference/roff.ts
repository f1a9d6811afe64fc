/**
 * The configuration reference in roff (man(7)), as tessia-task-runner.yaml(5) holds it, and the
 * escaping of text for it: what man(1) prints is what was written, with no request, escape or
 * line break of its own.
 */
import { exampleYaml } from './examples.js';
import type { ConfigKey } from './keys.js';

const RELOAD = { applied: 'A reload applies a change of it.', restart: 'A change of it needs a restart.' } as const;

/**
 * Plain text for a roff text line: backslashes and hyphens escaped (\- is the hyphen-minus a reader
 * types: options, paths, negative numbers), anything but ASCII as a named glyph, and a line never
 * starts a request.
 */
export function roffText(text: string): string {
  const escaped = text.replace(/[\\-]|[^ -~]/gu, (character) => {
    if (character === '\\') return '\\e';
    if (character === '-') return '\\-';
    return `\\[u${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`;
  });
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** Text with `code` spans, the spans in bold. */
export function roffInline(text: string): string {
  return roffText(text)
    .split('`')
    .map((part, index) => (index % 2 === 1 ? `\\fB${part}\\fR` : part))
    .join('');
}

function entry(key: ConfigKey): string {
  const lines = ['.TP', `.B ${roffText(key.path)}`, roffInline(key.description), '.br', roffInline(`Value: ${key.value}.`)];
  if (key.default !== undefined) lines.push(roffInline(`Default: ${key.default}.`));
  if (key.reload) lines.push(roffText(RELOAD[key.reload]));
  for (const example of key.examples) {
    lines.push(
      '.IP',
      '.EX',
      ...exampleYaml(example)
        .trimEnd()
        .split('\n')
        .map((line) => `\\&${roffText(line)}`),
      '.EE',
    );
  }
  return lines.join('\n');
}

export function roffReference(keys: readonly ConfigKey[]): string {
  return `${keys.map(entry).join('\n')}\n`;
}
