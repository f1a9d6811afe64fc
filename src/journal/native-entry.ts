/**
 * One journal entry as a datagram of journald's native protocol ("Native Journal Protocol" in
 * systemd's docs): `NAME=value\n` per field, or `NAME\n<64-bit little-endian length><value>\n`
 * for a value with a newline. A datagram is limited by the sender's socket buffer (about 208 KiB
 * with Linux defaults); sd-journal passes larger entries as a memfd over SCM_RIGHTS, which
 * unix-dgram cannot, so larger entries are cut here instead.
 */
import { PRIORITIES } from './priority.js';

export type JournalFields = Record<string, string>;

/** Names the fields cut to fit, comma-separated (`journalctl TESSIA_TRUNCATED=MESSAGE`). */
export const TRUNCATED_FIELD = 'TESSIA_TRUNCATED';
/** "NAME" is followed by "\n", 8 length bytes and a closing "\n" in the binary form. */
const BINARY_FRAMING = 10;

/**
 * journald's field names are upper-case letters, digits and underscores, not starting with a digit;
 * those starting with `_` are journald's own and refused from clients.
 */
export function journalFieldName(name: string): string {
  const cleaned = name
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .replace(/^[_0-9]+/, '');
  return cleaned.slice(0, 64) || 'FIELD';
}

export function serializeEntry(fields: JournalFields): Buffer {
  // Text fields run together into one string, encoded once: an entry is mostly short text fields.
  const parts: Buffer[] = [];
  let text = '';
  for (const [name, value] of Object.entries(fields)) {
    if (!value.includes('\n')) {
      text += `${name}=${value}\n`;
      continue;
    }
    const bytes = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${text}${name}\n`, 'utf8'), length, bytes, Buffer.from('\n'));
    text = '';
  }
  if (parts.length === 0) return Buffer.from(text, 'utf8');
  if (text !== '') parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/**
 * The entry as a datagram of at most `maxBytes`. One that is larger keeps every field but its
 * largest values (MESSAGE, in practice), which are cut at a character boundary and end with a line
 * saying how much was kept; TESSIA_TRUNCATED names them. Cutting rather than splitting keeps one
 * log record one journal entry. Should even that not fit (thousands of fields), a short entry with
 * the priority and identifier says the entry was left out.
 */
export function serializeWithin(fields: JournalFields, maxBytes: number): Buffer {
  const whole = serializeEntry(fields);
  if (whole.length <= maxBytes) return whole;
  const cut: JournalFields = { ...fields };
  const truncated: string[] = [];
  let size = whole.length;
  const largestFirst = Object.keys(fields).sort((a, b) => byteLength(fields[b]) - byteLength(fields[a]));
  for (const name of largestFirst) {
    const original = Buffer.from(fields[name] ?? '', 'utf8');
    const marker = (kept: number) => `\n[truncated by tessia: ${kept} of ${original.length} bytes kept]`;
    // Cutting a value shorter than its marker makes the entry larger; the rest are shorter still.
    if (original.length <= byteLength(marker(original.length))) break;
    size -= fieldSize(name, cut[name] ?? '');
    if (truncated.length > 0) size -= fieldSize(TRUNCATED_FIELD, truncated.join(','));
    truncated.push(name);
    cut[TRUNCATED_FIELD] = truncated.join(',');
    size += fieldSize(TRUNCATED_FIELD, cut[TRUNCATED_FIELD]);
    const room = maxBytes - size - byteLength(name) - BINARY_FRAMING - byteLength(marker(original.length));
    const kept = cutAtCharacter(original, Math.max(0, room));
    cut[name] = kept.toString('utf8') + marker(kept.length);
    size += fieldSize(name, cut[name]);
    if (room >= 0) return serializeEntry(cut);
  }
  return serializeEntry(leftOut(fields, whole.length));
}

function leftOut(fields: JournalFields, size: number): JournalFields {
  return {
    MESSAGE: `[an entry of ${size} bytes with ${Object.keys(fields).length} fields, too large for one datagram, left out]`,
    PRIORITY: /^[0-7]$/.test(fields['PRIORITY'] ?? '') ? (fields['PRIORITY'] as string) : String(PRIORITIES.warning),
    SYSLOG_IDENTIFIER: (fields['SYSLOG_IDENTIFIER'] ?? 'unknown').slice(0, 64).replace(/\n/g, ' '),
    [TRUNCATED_FIELD]: '*',
  };
}

function fieldSize(name: string, value: string): number {
  return byteLength(name) + byteLength(value) + (value.includes('\n') ? BINARY_FRAMING : 2);
}

function byteLength(value: string | undefined): number {
  return Buffer.byteLength(value ?? '', 'utf8');
}

/** The first `maxBytes` bytes or fewer, never half a UTF-8 character. */
function cutAtCharacter(bytes: Buffer, maxBytes: number): Buffer {
  let end = Math.min(maxBytes, bytes.length);
  const CONTINUATION = 0b1000_0000;
  while (end > 0 && end < bytes.length && ((bytes[end] as number) & 0b1100_0000) === CONTINUATION) end--;
  return bytes.subarray(0, end);
}
