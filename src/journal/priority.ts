/**
 * syslog priorities as journald keeps them (PRIORITY=0…7), their names, and the other spellings
 * people use for them (error, warn, critical…). Every priority table of the runner derives from this.
 */
export const PRIORITY_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export type PriorityName = (typeof PRIORITY_NAMES)[number];
export type Priority = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

export const PRIORITIES = Object.fromEntries(PRIORITY_NAMES.map((name, level) => [name, level])) as Record<PriorityName, Priority>;

/** journald's default for an entry without PRIORITY. */
export const DEFAULT_PRIORITY: Priority = PRIORITIES.info;

const ALIASES: Record<string, Priority> = {
  ...PRIORITIES,
  emergency: PRIORITIES.emerg,
  critical: PRIORITIES.crit,
  error: PRIORITIES.err,
  warn: PRIORITIES.warning,
  information: PRIORITIES.info,
};

/** A priority from its number (0-7) or any of its names, in any case; undefined when it is neither. */
export function parsePriority(value: string): Priority | undefined {
  if (/^[0-7]$/.test(value)) return Number(value) as Priority;
  return Object.hasOwn(ALIASES, value.toLowerCase()) ? ALIASES[value.toLowerCase()] : undefined;
}

export function priorityName(priority: number): PriorityName {
  return PRIORITY_NAMES[priority] ?? PRIORITY_NAMES[DEFAULT_PRIORITY];
}
