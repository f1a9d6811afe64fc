/** ISO 8601 with microseconds, from systemd's µs-since-epoch timestamps. */
export function isoFromMicros(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  // A log read stamps 100 000 entries, most in the same second as the one before: its date and time
  // are made once.
  if (seconds !== lastSeconds) {
    lastSeconds = seconds;
    lastSecondsIso = new Date(Number(seconds) * 1000).toISOString().slice(0, -5);
  }
  const fraction = micros - seconds * 1_000_000n;
  return `${lastSecondsIso}.${String(fraction).padStart(6, '0')}Z`;
}
let lastSeconds = -1n;
let lastSecondsIso = '';

export function nowIso(): string {
  return isoFromMicros(BigInt(Date.now()) * 1000n);
}
