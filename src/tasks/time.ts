/** The date and time (to the second) of the last isoFromMicros: a log read stamps 100 000 entries, most in the second of the one before. */
let lastSecond: { seconds: bigint; iso: string } | undefined;

/** ISO 8601 with microseconds, from systemd's µs-since-epoch timestamps. */
export function isoFromMicros(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  if (lastSecond?.seconds !== seconds) {
    lastSecond = { seconds, iso: new Date(Number(seconds) * 1000).toISOString().slice(0, -5) };
  }
  const fraction = micros - seconds * 1_000_000n;
  return `${lastSecond.iso}.${String(fraction).padStart(6, '0')}Z`;
}

export function nowIso(): string {
  return isoFromMicros(BigInt(Date.now()) * 1000n);
}
