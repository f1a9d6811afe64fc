/**
 * A small deterministic generator for tests that try many inputs: `random(n)` is an integer in
 * [0, n). mulberry32, in 32-bit integer arithmetic: a linear congruence in doubles loses its low
 * bits past 2^53, and `random(2)` was then nearly always 0.
 */
export function seeded(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const value = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    return Math.floor(value * n);
  };
}
