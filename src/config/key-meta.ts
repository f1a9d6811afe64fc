/**
 * What the configuration reference (tessia-task-runner.yaml(5) and README's "Configuration", both
 * written by scripts/write-docs.ts) says of a key besides its `description`: the keys the schema's
 * `.meta()` may carry, beside JSON Schema's own (`description`, `examples`).
 */
declare module 'zod/v4/core' {
  interface GlobalMeta {
    /** The unit of a number: seconds, bytes, days… */
    unit?: string;
    /** How a value is written, where its type does not say: HOST:PORT, an absolute path, a size… */
    syntax?: string;
    /** What null means, for a key that may be null: no limit, a dynamic user… */
    nullMeans?: string;
    /** What the default is, for a key whose absence is its default: $STATE_DIRECTORY, else … */
    defaultText?: string;
    /** Values of the key as a config holds them, each shown (and checked) as a whole config. */
    examples?: unknown[];
  }
}

export {};
