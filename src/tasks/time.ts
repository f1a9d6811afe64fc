/** ISO 8601 with microseconds, from systemd's µs-since-epoch timestamps. */
export function isoFromMicros(micros: bigint): string {
  const millis = micros / 1000n;
  const iso = new Date(Number(millis)).toISOString();
  const extra = String(micros % 1000n).padStart(3, '0');
  return `${iso.slice(0, -1)}${extra}Z`;
}

export function nowIso(): string {
  return isoFromMicros(BigInt(Date.now()) * 1000n);
}
