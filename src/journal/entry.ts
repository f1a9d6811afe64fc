/**
 * One journal entry as journalctl's JSON output has it, made lossless and typed: a field value
 * that is UTF-8 text is a string; one that is not (journalctl gives an array of byte values) is
 * `{ base64 }`; a field that occurs several times in the entry is an array of those.
 */
import { parseFlatJsonObject } from './flat-json.js';

export type FieldValue = string | { base64: string };
export type Field = FieldValue | FieldValue[];

export interface JournalEntry {
  cursor: string;
  /** µs since the epoch. */
  realtime: bigint;
  /** µs since boot. */
  monotonic: bigint;
  /**
   * Every other field, by name (trusted `_` ones included), in an object without a prototype. The
   * three address fields above may be keys here with the value `undefined` (see parseJournalLine):
   * the views leave them out.
   */
  fields: Record<string, Field | undefined>;
}

/** null when the line is not a journal entry (it is then skipped). */
export function parseJournalLine(line: string): JournalEntry | null {
  const record = parseFlatJsonObject(line);
  if (record === undefined) return null;
  const field = record['__CURSOR'];
  if (typeof field !== 'string') return null;
  // A copy: a value read from the line shares its memory (a slice of it), and a follower keeps its
  // last cursor as long as it follows (a huge entry's line would stay with it). Cursors are ASCII.
  const cursor = Buffer.from(field, 'latin1').toString('latin1');
  // Reuse the parsed object as the field map: entries come by the hundred thousand. Its address
  // fields are set to undefined (the views leave them out).
  const realtime = toMicros(record['__REALTIME_TIMESTAMP']);
  const monotonic = toMicros(record['__MONOTONIC_TIMESTAMP']);
  record['__CURSOR'] = undefined;
  record['__REALTIME_TIMESTAMP'] = undefined;
  record['__MONOTONIC_TIMESTAMP'] = undefined;
  for (const name in record) {
    const value = record[name];
    if (typeof value === 'string' || value === undefined) continue;
    // null (a value journalctl would not print) becomes undefined as well: nothing to keep.
    record[name] = toField(value);
  }
  const fields = record as Record<string, Field>;
  return { cursor, realtime, monotonic, fields };
}

/** A field's single value as text (the first of several; bytes decoded leniently). */
export function fieldText(field: Field | undefined): string | undefined {
  if (field === undefined) return undefined;
  const value = Array.isArray(field) ? field[0] : field;
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : Buffer.from(value.base64, 'base64').toString('utf8');
}

function toField(value: unknown): Field | undefined {
  if (typeof value === 'string') return value;
  if (isByteArray(value)) return { base64: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) {
    // Several values of one field: each a string or a byte array.
    const values = value.map(toField).filter((item): item is FieldValue => item !== undefined && !Array.isArray(item));
    return values;
  }
  // null: a value journalctl would not print (over its size limit without --all); nothing to keep.
  return undefined;
}

function isByteArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'number');
}

function toMicros(value: unknown): bigint {
  if (typeof value === 'string' && /^\d+$/.test(value)) return BigInt(value);
  return 0n;
}
