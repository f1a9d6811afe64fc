import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoFromMicros } from '../../src/tasks/time.js';

describe('isoFromMicros', () => {
  it('gives six fractional digits, for stamps of one second and of the seconds around it in any order.', () => {
    const stamps = [1767323045000001n, 1767323045999999n, 1767323046000000n, 1767323045500000n, 1767323044999999n, 0n];
    assert.deepEqual(stamps.map(isoFromMicros), [
      '2026-01-02T03:04:05.000001Z',
      '2026-01-02T03:04:05.999999Z',
      '2026-01-02T03:04:06.000000Z',
      '2026-01-02T03:04:05.500000Z',
      '2026-01-02T03:04:04.999999Z',
      '1970-01-01T00:00:00.000000Z',
    ]);
  });

  it('throws for a stamp outside what a date holds, each time, and gives the right one after it.', () => {
    assert.equal(isoFromMicros(1767323045000001n), '2026-01-02T03:04:05.000001Z');
    const beyond = 2n ** 64n - 1n; // systemd's USEC_INFINITY
    assert.throws(() => isoFromMicros(beyond), RangeError);
    assert.throws(() => isoFromMicros(beyond - 1n), RangeError);
    assert.equal(isoFromMicros(1767323045000002n), '2026-01-02T03:04:05.000002Z');
  });
});
