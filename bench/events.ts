/**
 * Task events: (1) latency from a task's end (systemd's ExecMainExitTimestamp) to a subscriber of
 * GET /v1/events, against the same end seen as a raw D-Bus PropertiesChanged signal by a bare client
 * on the same bus, same tasks, same run; (2) what 1000 idle subscribers cost the runner (RSS, CPU),
 * and the CPU of delivering a burst of task ends to them, against the same burst with no subscriber.
 */
import { performance } from 'node:perf_hooks';
import { followLines } from '../src/embedded/api-streams.js';
import { client } from '../src/embedded/api-client.js';
import { eventually } from '../src/embedded/eventually.js';
import type { PrivateSystemd } from '../src/embedded/private-systemd.js';
import type { RunnerService } from '../src/embedded/runner-service.js';
import { SystemdClient } from '../src/systemd/client.js';
import { taskIdOf } from '../src/tasks/unit-names.js';
import { cpuSeconds, mainPid, memory } from './processes.js';
import { percentile, round } from './stats.js';

export const EVENT_BENCH_MACHINES = {
  'bench-ends-soon': { exec: ['/bin/sleep', '0.5'] },
};

const nowMicros = () => (performance.timeOrigin + performance.now()) * 1000;

/** systemd's µs timestamps as the runner writes them (ISO 8601 with 6 decimals). */
function microsOf(iso: string): number {
  const match = /^(.*)\.(\d{3})(\d{3})Z$/.exec(iso);
  if (!match) return Date.parse(iso) * 1000;
  return Date.parse(`${match[1]}.${match[2]}Z`) * 1000 + Number(match[3]);
}

export async function benchEvents(runner: RunnerService, systemd: PrivateSystemd, say: (line: string) => void, samples = 100) {
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = systemd.busAddress;
  const bus = await SystemdClient.connect(() => false);
  const api = client(runner.baseUrl);
  const ends = new Map<string, { api?: number; raw?: number; exit?: number }>();
  const seen = (taskId: string) => ends.get(taskId) ?? ends.set(taskId, {}).get(taskId)!;
  bus.on('unitChanged', ({ unitName, changed }) => {
    const taskId = taskIdOf(unitName);
    if (taskId && changed['SubState'] === 'exited') seen(taskId).raw ??= nowMicros();
  });
  const subscriber = followLines(`${runner.baseUrl}/v1/events`, (line) => {
    const event = JSON.parse(line) as { type: string; taskId: string; state: string; at: string };
    if (event.type !== 'task' || event.state !== 'exited') return;
    const end = seen(event.taskId);
    end.api ??= nowMicros();
    end.exit = microsOf(event.at);
  });
  await subscriber.response;
  const apiMs: number[] = [];
  const rawMs: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const started = await api.post('/v1/tasks', { machine: 'bench-ends-soon', parameters: null });
      const { taskId, unit } = started.body as { taskId: string; unit: string };
      bus.watch(unit);
      const end = await eventually(
        'the end seen both ways',
        () => ends.get(taskId),
        (value) => value?.api !== undefined && value.raw !== undefined && value.exit !== undefined,
        20_000,
      );
      bus.unwatch(unit);
      apiMs.push(((end?.api ?? 0) - (end?.exit ?? 0)) / 1000);
      rawMs.push(((end?.raw ?? 0) - (end?.exit ?? 0)) / 1000);
      await api.delete(`/v1/tasks/${taskId}`);
    }
  } finally {
    subscriber.abort();
    bus.close();
  }
  const latency = {
    samples,
    eventP50Ms: round(percentile(apiMs, 50), 2),
    eventP99Ms: round(percentile(apiMs, 99), 2),
    rawSignalP50Ms: round(percentile(rawMs, 50), 2),
    rawSignalP99Ms: round(percentile(rawMs, 99), 2),
  };
  say(
    `event latency (task end → subscriber) p50 ${latency.eventP50Ms} ms p99 ${latency.eventP99Ms} ms; raw D-Bus signal p50 ${latency.rawSignalP50Ms} ms p99 ${latency.rawSignalP99Ms} ms`,
  );
  return { latency, subscribers: await benchSubscribers(runner, systemd, say) };
}

/** RSS and CPU of the runner with 0 and with 1000 subscribers, idle and through a burst of 100 task ends. */
async function benchSubscribers(runner: RunnerService, systemd: PrivateSystemd, say: (line: string) => void, count = 1000, burst = 100) {
  const api = client(runner.baseUrl);
  const pid = await mainPid(systemd, runner.unit);
  const burstCpu = async () => {
    const before = cpuSeconds(systemd, pid);
    const ids: string[] = [];
    for (let i = 0; i < burst; i++)
      ids.push(((await api.post('/v1/tasks', { machine: 'bench-ends-soon', parameters: null })).body as { taskId: string }).taskId);
    for (const id of ids) await api.get(`/v1/tasks/${id}?wait=finished&timeout=30`);
    const cpu = cpuSeconds(systemd, pid) - before;
    for (const id of ids) await api.delete(`/v1/tasks/${id}`);
    return cpu;
  };
  const idleCpu = async (seconds: number) => {
    const before = cpuSeconds(systemd, pid);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return cpuSeconds(systemd, pid) - before;
  };
  const bare = { rssBytes: memory(systemd, pid).rssBytes, idleCpuSeconds: await idleCpu(10), burstCpuSeconds: await burstCpu() };
  let received = 0;
  const streams = Array.from({ length: count }, () =>
    followLines(`${runner.baseUrl}/v1/events`, (line) => {
      if (line.includes('"type":"task"')) received += 1;
    }),
  );
  try {
    await Promise.all(streams.map((stream) => stream.response));
    const opened = { rssBytes: memory(systemd, pid).rssBytes, idleCpuSeconds: await idleCpu(10) };
    const burstCpuSeconds = await burstCpu();
    const expected = count * burst * 3;
    // Reported as counted: short of `expected` says events were not delivered within a minute.
    await eventually(
      'every subscriber got every event',
      () => received,
      (value) => value >= expected,
      60_000,
    ).catch(() => say(`only ${received} of ${expected} events delivered within a minute`));
    const result = {
      subscribers: count,
      burstTasks: burst,
      eventsDelivered: received,
      eventsExpectedAtLeast: expected,
      bare: {
        rssMiB: round(bare.rssBytes / 2 ** 20),
        idleCpuSeconds10s: round(bare.idleCpuSeconds, 2),
        burstCpuSeconds: round(bare.burstCpuSeconds, 2),
      },
      withSubscribers: {
        rssMiB: round(opened.rssBytes / 2 ** 20),
        idleCpuSeconds10s: round(opened.idleCpuSeconds, 2),
        burstCpuSeconds: round(burstCpuSeconds, 2),
      },
      rssPerSubscriberKiB: round((opened.rssBytes - bare.rssBytes) / count / 1024),
      cpuMsPerDeliveredEvent: round(((burstCpuSeconds - bare.burstCpuSeconds) * 1000) / Math.max(1, received), 3),
    };
    say(`${count} subscribers: ${JSON.stringify(result)}`);
    return result;
  } finally {
    for (const stream of streams) stream.abort();
  }
}
