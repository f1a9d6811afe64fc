/** How the page says things: exit codes, durations, times, sizes, journal priorities. */

/** The runner's own exit codes (src/tasks/model.ts ExitCode, docs/lifecycle.md); any other is the machine's. */
export const EXIT_MEANINGS: Readonly<Record<number, string>> = {
  0: 'success',
  [-1]: 'stopped on request',
  [-2]: 'runtime limit reached',
  [-3]: 'exception',
  [-99]: 'undetermined',
};

export function exitMeaning(exitCode: number | null): string {
  if (exitCode === null) return '';
  return EXIT_MEANINGS[exitCode] ?? "the machine's own code";
}

/** "1 h 02 min", "3 min 05 s", "4.2 s", "120 ms". */
export function duration(fromIso: string | null, toIso: string | null, now: Date = new Date()): string {
  if (fromIso === null) return '';
  const ms = (toIso === null ? now.getTime() : Date.parse(toIso)) - Date.parse(fromIso);
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const two = (n: number) => String(Math.floor(n)).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${two(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${two((seconds % 3600) / 60)} min`;
}

/** A time as the reader's clock shows it, to the second; '' for none. */
export function localTime(iso: string | null): string {
  if (iso === null) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString(undefined, { hour12: false });
}

export function bytes(value: number | null): string {
  if (value === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${size.toFixed(1)} ${units[unit] ?? ''}`;
}

/** CPU time from nanoseconds. */
export function cpuTime(nsec: number | null): string {
  return nsec === null ? '' : duration(new Date(0).toISOString(), new Date(nsec / 1e6).toISOString());
}

/** The class of an entry's line, from the priority's name the runner gives it (journalctl's names). */
export function priorityClass(priorityName: unknown): string {
  return `tessia-log--${typeof priorityName === 'string' && /^[a-z]+$/.test(priorityName) ? priorityName : 'info'}`;
}

/**
 * Text as it is, but control characters and bidirectional overrides made visible (\u001b, \u202e):
 * a task's output cannot move or hide what the page shows around it.
 */
export function visible(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- the point: to find them
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** At most `max` characters of a text, and how many more there were. */
export function truncated(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
