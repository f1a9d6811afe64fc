/**
 * Why systemd failed a start job, in words for the START_FAILED detail: the job's result, the
 * unit's Result and exit status as systemd gives them, and, for the failures a full host causes,
 * which limit it is (systemd.exec(5), "Process Exit Codes"; systemd.service(5), Result).
 */

import type { UnitSnapshot } from './client.js';

/** systemd's EXIT_USER: the child could not take the unit's user (with DynamicUser=, none was free). */
const EXIT_USER = 217;

export function describeStartFailure(jobResult: string, unit: Pick<UnitSnapshot, 'result' | 'execMainStatus'> | null): string {
  const what = `start job ${jobResult} (${unit ? `${unit.result}, status ${unit.execMainStatus}` : 'unit gone'})`;
  if (unit?.result === 'resources') {
    return `${what}: systemd could not set the unit up, a limit of the host is reached (systemd's open files, processes or memory; its journal for the unit says which)`;
  }
  if (unit?.execMainStatus === EXIT_USER) {
    return `${what}: the unit's user could not be set up (with DynamicUser=, all 4336 dynamic users, UIDs 61184-65519, may be in use)`;
  }
  return what;
}
