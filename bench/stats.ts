/** Small statistics for the benchmarks. */
export const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

export const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

/** Runs `work` from `clients` concurrent loops until each has taken `count` items off a shared queue. */
export async function inParallel<T>(items: T[], clients: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(clients, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}
