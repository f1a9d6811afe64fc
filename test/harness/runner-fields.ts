/**
 * The fields of one of the runner's own journal entries, whichever transport wrote it: journal
 * fields of their own with the native transport (`_TRANSPORT=journal`), else the `KEY=value` pairs
 * that src/log.ts `textLine` writes after the message (`_TRANSPORT=stdout`, no unix-dgram). So a
 * test asserts what holds in both configurations; what needs the native transport is tested apart,
 * behind `skipUnlessNativeJournal`.
 */
const PAIR = / ([A-Z][A-Z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;

export function runnerFields(entry: Record<string, string>): Record<string, string> {
  if (entry['_TRANSPORT'] !== 'stdout') return entry;
  const text = entry['MESSAGE'] ?? '';
  const fields: Record<string, string> = {};
  let messageEnd = text.length;
  for (const match of text.matchAll(PAIR)) {
    const [, name, value] = match as unknown as [string, string, string];
    fields[name] = value.startsWith('"') ? (JSON.parse(value) as string) : value;
    messageEnd = Math.min(messageEnd, match.index);
  }
  return { ...entry, ...fields, MESSAGE: text.slice(0, messageEnd) };
}
