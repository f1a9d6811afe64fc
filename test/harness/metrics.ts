/** A sample of a runner's /metrics. */
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** The value of `name` with `labels`; 0 for a counter with no sample yet. */
export async function metricOf(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const families = parsePrometheusTextFormat(await (await fetch(`${baseUrl}/metrics`)).text());
  const family = families.find((each) => each.name === name);
  assert.ok(family, `${name} is exported`);
  const sample = family.metrics.find((each) => Object.entries(labels).every(([key, value]) => each.labels?.[key] === value));
  return Number(sample?.value ?? 0);
}
