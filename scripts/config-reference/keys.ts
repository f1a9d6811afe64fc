/**
 * The configuration reference as data: every key of the config schema, in the schema's order, with
 * what its `.meta()` says (src/config/key-meta.ts) and what the schema itself says (type, range,
 * default). markdown.ts and roff.ts print it; nothing here is written twice.
 */
import { z } from 'zod';
import { LIVE_KEYS } from '../../src/config/reloadable.js';
import { ConfigSchema, type Config } from '../../src/config/schema.js';

export interface ConfigKey {
  /** Where the key is: `limits.maxBodyBytes`, `machines.<name>.limits.memoryMax`, `auth.tokens[].name`. */
  path: string;
  /** 0 for a top-level key. */
  depth: number;
  description: string;
  /** What a value is: "a number of seconds, at least 0.001, or null: no limit". Text with `code` spans. */
  value: string;
  /**
   * "required", or what holds when the key is left out: "`60`", "none: plain HTTP"; none for a
   * mapping whose keys each have their own. Text with `code` spans.
   */
  default?: string;
  /** Top-level keys: whether `systemctl reload` applies a change of it, or it needs a restart. */
  reload?: 'applied' | 'restart';
  /** Example values of the key, each as a whole config that shows it where it goes. */
  examples: Record<string, unknown>[];
}

type Schema = z.core.$ZodType;
type Meta = z.core.GlobalMeta;
type Def = z.core.$ZodTypeDef & {
  innerType?: Schema;
  in?: Schema;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  element?: Schema;
  valueType?: Schema;
};

/** A key's schema under its wrappers (default, optional, nullable, a transform's input), and what they add. */
interface Unwrapped {
  base: Schema;
  meta: Meta;
  defaultValue?: unknown;
  hasDefault: boolean;
  optional: boolean;
  nullable: boolean;
}

function unwrap(schema: Schema): Unwrapped {
  const metas: Meta[] = [];
  const found: Omit<Unwrapped, 'base' | 'meta'> = { hasDefault: false, optional: false, nullable: false };
  for (let current = schema; ;) {
    const meta = z.globalRegistry.get(current);
    if (meta) metas.push(meta);
    const def = current._zod.def as Def;
    if (def.type === 'default' && !found.hasDefault) Object.assign(found, { hasDefault: true, defaultValue: def.defaultValue });
    else if (def.type === 'optional') found.optional = true;
    else if (def.type === 'nullable') found.nullable = true;
    else if (def.type !== 'pipe' && def.type !== 'default') {
      // The outermost meta wins: a key's own over the shared schema's (absolutePath…).
      return { ...found, base: current, meta: Object.assign({}, ...metas.reverse()) as Meta };
    }
    current = (def.type === 'pipe' ? def.in : def.innerType) as Schema;
  }
}

/** The keys inside a key: a mapping's, each item's of a list, or each named entry's (machines). */
function childrenOf(base: Schema): { shape: Record<string, Schema>; infix: string; named: boolean } | undefined {
  const def = base._zod.def as Def;
  const entry = def.type === 'array' ? def.element : def.type === 'record' ? def.valueType : undefined;
  if (def.type === 'object' && def.shape) return { shape: def.shape, infix: '.', named: false };
  const inner = entry && childrenOf(unwrap(entry).base);
  return inner && { shape: inner.shape, infix: def.type === 'array' ? '[].' : '.<name>.', named: true };
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** 1048576 → "1048576 (1 MiB)", for a number of bytes that is a whole number of KiB, MiB…. */
function bytes(value: number): string {
  let unit = -1;
  let scaled = value;
  while (scaled >= 1024 && scaled % 1024 === 0 && unit < BYTE_UNITS.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return unit < 0 ? `${value}` : `${value} (${scaled} ${BYTE_UNITS[unit] ?? ''})`;
}

/** "at least 0.001", "from 1 to 64", "above 0": the bounds a number's schema checks. */
function rangeOf(number: z.ZodNumber, unit: string | undefined): string {
  const show = (value: number) => (unit === 'bytes' ? bytes(value) : `${value}`);
  const { minValue, maxValue } = number;
  const low = minValue === null || minValue <= Number.MIN_SAFE_INTEGER ? undefined : minValue;
  const high = maxValue === null || maxValue >= Number.MAX_SAFE_INTEGER ? undefined : maxValue;
  // Whether a bound is inclusive is what the schema answers for it.
  const lowWord = low !== undefined && number.safeParse(low).success ? 'at least' : 'above';
  if (low !== undefined && high !== undefined)
    return lowWord === 'at least' ? `from ${show(low)} to ${show(high)}` : `above ${show(low)}, at most ${show(high)}`;
  if (low !== undefined) return `${lowWord} ${show(low)}`;
  return high === undefined ? '' : `at most ${show(high)}`;
}

function valueOf({ base, meta, nullable }: Unwrapped): string {
  const def = base._zod.def as Def;
  let text: string;
  if (meta.syntax) text = meta.syntax;
  else if (def.type === 'boolean') text = '`true` or `false`';
  else if (def.type === 'enum') {
    const options = (base as z.ZodEnum).options.map((option) => `\`${String(option)}\``);
    text = options.length === 1 ? (options[0] ?? '') : `${options.slice(0, -1).join(', ')} or ${options.at(-1) ?? ''}`;
  } else if (def.type === 'number') {
    const number = base as z.ZodNumber;
    const noun = (number.format ?? '').includes('int') ? 'an integer' : 'a number';
    const range = rangeOf(number, meta.unit);
    text = [meta.unit ? `${noun} of ${meta.unit}` : noun, range].filter(Boolean).join(', ');
  } else if (def.type === 'string') text = 'a string';
  else if (def.type === 'object') text = 'a mapping of the keys below';
  else if (def.type === 'array') {
    const item = unwrap(def.element as Schema);
    text = childrenOf(item.base) ? 'a list of mappings of the keys below' : `a list, each item ${valueOf(item)}`;
  } else if (def.type === 'record') text = 'a mapping of names to mappings of the keys below';
  else throw new Error(`no words for a ${def.type}: give it a syntax in its .meta()`);
  return nullable ? `${text}, or \`null\`${meta.nullMeans ? `: ${meta.nullMeans}` : ''}` : text;
}

function defaultOf({ base, meta, hasDefault, defaultValue, optional }: Unwrapped): string | undefined {
  if (meta.defaultText) return meta.defaultText;
  if (!hasDefault) return optional ? 'none' : 'required';
  if (defaultValue !== null && typeof defaultValue === 'object' && !Array.isArray(defaultValue)) return undefined;
  if (typeof defaultValue === 'number' && meta.unit === 'bytes')
    return `\`${defaultValue}\`${bytes(defaultValue).slice(String(defaultValue).length)}`;
  if (typeof defaultValue === 'string' && (base._zod.def as Def).type !== 'enum' && defaultValue === '') return '`""`';
  return `\`${typeof defaultValue === 'string' ? defaultValue : JSON.stringify(defaultValue)}\``;
}

const optionalDefault = (text: string | undefined) => (text === undefined ? {} : { default: text });

/** Every key of `schema` (the config's by default), depth first, in the schema's order. */
export function configKeys(schema: z.ZodObject = ConfigSchema): ConfigKey[] {
  const keys: ConfigKey[] = [];
  /** `place`: a value of the key at this level as a whole config; undefined under a list or a mapping of names. */
  const visit = (
    shape: Record<string, Schema>,
    prefix: string,
    depth: number,
    place: ((value: unknown) => Record<string, unknown>) | undefined,
  ) => {
    for (const [name, child] of Object.entries(shape)) {
      const path = `${prefix}${name}`;
      const found = unwrap(child);
      const { description, examples = [] } = found.meta;
      if (!description) throw new Error(`${path}: no description in its .meta()`);
      const at = place && ((value: unknown) => place({ [name]: value }));
      if (examples.length > 0 && !at)
        throw new Error(`${path}: an example where no whole config can show it (inside a list or a mapping of names)`);
      keys.push({
        path,
        depth,
        description,
        value: valueOf(found),
        ...optionalDefault(defaultOf(found)),
        ...(depth === 0 ? { reload: LIVE_KEYS.has(name as keyof Config) ? ('applied' as const) : ('restart' as const) } : {}),
        examples: at ? examples.map(at) : [],
      });
      const inner = childrenOf(found.base);
      if (inner) visit(inner.shape, `${path}${inner.infix}`, depth + 1, inner.named ? undefined : at);
    }
  };
  visit(schema.shape, '', 0, (value) => value as Record<string, unknown>);
  return keys;
}
