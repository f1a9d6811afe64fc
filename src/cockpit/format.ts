/** How the page says things: exit codes, durations, times, sizes, journal priorities. */

/** The runner's own exit codes (docs/lifecycle.md); any other is the machine's. */
const EXIT_MEANINGS: Record<number, string> = {
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

/** syslog's priorities, as journalctl names and colours them: the class of an entry's line. */
const PRIORITY_CLASSES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

export function priorityClass(priority: unknown): string {
  const index = typeof priority === 'number' && Number.isInteger(priority) ? priority : 6;
  return `tessia-log--${PRIORITY_CLASSES[Math.min(Math.max(index, 0), 7)] ?? 'info'}`;
}
