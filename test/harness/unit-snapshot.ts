/** A task unit as the fake systemd clients of the unit tests have it (tracking, recovery). */
import type { UnitSnapshot } from '../../src/systemd/client.js';

/** The InvocationID of the units snapshot() makes. */
export const INVOCATION = 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5';

/** A loaded unit, active and running, with `status` over it. */
export function snapshot(unit: string, status: Partial<UnitSnapshot> = {}): UnitSnapshot {
  return {
    unitName: unit,
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    result: 'success',
    execMainCode: 0,
    execMainStatus: 0,
    cpuUsageNsec: null,
    invocationId: INVOCATION,
    activeEnterTimestamp: 1_795_000_000_000_000n,
    inactiveEnterTimestamp: 0n,
    execMainExitTimestamp: 0n,
    ...status,
  };
}

/** Everything a tracker has pending (a scheduled read, a read under way) has run. */
export async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
