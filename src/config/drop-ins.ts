/**
 * The config as systemd merges its own: the main file, then `config.d/*.yaml` beside it in the order
 * of their names (byte order: `10-base.yaml` before `50-site.yaml`), each merged over what came before —
 * mappings key by key at every depth, anything else (a value, a list, null) replaced whole. What set
 * each key is remembered, so that an error names the file as well as the key.
 */

export interface ConfigSource {
  /** The file's path, as errors name it. */
  source: string;
  document: Record<string, unknown>;
}

export interface MergedConfig {
  document: Record<string, unknown>;
  /** The file that set the key at `path`, or the nearest mapping around it; undefined for none. */
  sourceOf: (path: readonly PropertyKey[]) => string | undefined;
}

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function mergeSources(sources: readonly ConfigSource[]): MergedConfig {
  const document: Record<string, unknown> = {};
  const setBy = new Map<string, string>();
  const merge = (into: Record<string, unknown>, from: Record<string, unknown>, at: string[], source: string) => {
    for (const [key, value] of Object.entries(from)) {
      const path = [...at, key];
      // Own keys only, and set as own properties: a key named `__proto__` stays a key (which the
      // schema refuses by its file), never the prototype of every object of the process.
      const existing = Object.hasOwn(into, key) ? into[key] : undefined;
      if (isMapping(value) && isMapping(existing)) {
        merge(existing, value, path, source);
        continue;
      }
      Object.defineProperty(into, key, {
        value: isMapping(value) ? structuredClone(value) : value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      // Whatever lay under this key before is replaced: so is the memory of who set it.
      const prefix = `${pathKey(path)}\u0000`;
      for (const known of [...setBy.keys()]) if (known.startsWith(prefix)) setBy.delete(known);
      setBy.set(pathKey(path), source);
    }
  };
  for (const { source, document: next } of sources) merge(document, next, [], source);
  return {
    document,
    sourceOf: (path) => {
      for (let length = path.length; length > 0; length--) {
        const source = setBy.get(pathKey(path.slice(0, length).map(String)));
        if (source !== undefined) return source;
      }
      return undefined;
    },
  };
}

function pathKey(path: readonly string[]): string {
  return path.join('\u0000');
}
