/**
 * The match rules the runner gives the bus: which of systemd's and the bus's signals it is sent.
 * One definition each, for the client, its tests and the benchmarks.
 */
import { BUS_NAME, MANAGER, PROPERTIES, SYSTEMD_NAME } from './signals.js';
import { UNIT_PATH_PREFIX } from './unit-path.js';

const FROM_SYSTEMD = `type='signal',sender='${SYSTEMD_NAME}'`;

/** Who owns systemd's name, from the bus: its signals count only from that owner (./signals.ts). */
export const SYSTEMD_OWNER_RULE = `type='signal',sender='${BUS_NAME}',interface='${BUS_NAME}',member='NameOwnerChanged',arg0='${SYSTEMD_NAME}'`;

/** The end of every job (a unit name cannot be matched in a rule that also takes other jobs' ends). */
export const JOB_REMOVED_RULE = `${FROM_SYSTEMD},interface='${MANAGER}',member='JobRemoved'`;

/** One unit's property changes: the rule of each followed unit. */
export function unitChangesRule(objectPath: string): string {
  return `${FROM_SYSTEMD},interface='${PROPERTIES}',member='PropertiesChanged',path='${objectPath}'`;
}

/** Every unit's property changes (the object path namespace of units, without its trailing slash). */
export const ALL_UNITS_CHANGES_RULE = `${FROM_SYSTEMD},interface='${PROPERTIES}',member='PropertiesChanged',path_namespace='${UNIT_PATH_PREFIX.replace(/\/$/, '')}'`;
