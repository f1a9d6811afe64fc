/**
 * Prometheus metrics (prom-client), in one registry of the runner's own: task counts by state at
 * scrape time, starts/stops/failures, the D-Bus start round trip, log and event streams, journal
 * readers, retention, D-Bus reconnects, task unit reads, other units' signals dropped, forged D-Bus signals, and writes the task
 * store refused (a full disk).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TASK_STATES } from './tasks/model.js';

export interface MetricSources {
  tasksByState(): Record<string, number>;
  journalReaders(): number;
  eventStreams(): number;
  dbusReconnects(): number;
  unitReads(): number;
  unitSignalsDropped(): number;
  storeWritable(): boolean;
  storeWriteFailures(): number;
}

export class RunnerMetrics {
  readonly registry = new Registry();
  readonly starts = new Counter({ name: 'tessia_task_starts_total', help: 'Tasks started', registers: [this.registry] });
  readonly startFailures = new Counter({
    name: 'tessia_task_start_failures_total',
    help: 'Task starts that systemd refused or that failed to start',
    registers: [this.registry],
  });
  readonly checks = new Counter({
    name: 'tessia_parameter_checks_total',
    help: "Machines' checks of a request's parameters (in units of their own), by outcome: valid, invalid, broken, timeout",
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly stops = new Counter({ name: 'tessia_task_stops_total', help: 'Stop requests', registers: [this.registry] });
  readonly startSeconds = new Histogram({
    name: 'tessia_task_start_duration_seconds',
    help: 'StartTransientUnit until systemd finished the start job (the D-Bus round trip)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly pruned = new Counter({
    name: 'tessia_tasks_pruned_total',
    help: 'Finished tasks removed by retention (record, events, idempotency key, working directory), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly pruneSeconds = new Histogram({
    name: 'tessia_retention_sweep_duration_seconds',
    help: 'One retention sweep',
    buckets: [0.001, 0.01, 0.1, 1, 10, 60],
    registers: [this.registry],
  });
  readonly logStreams = new Gauge({ name: 'tessia_log_streams_active', help: 'Log streams being served', registers: [this.registry] });
  readonly forgedSignals = new Counter({
    name: 'tessia_dbus_forged_signals_total',
    help: "D-Bus signals dropped because they did not come from systemd's current owner or from the bus (forged)",
    labelNames: ['member'],
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    this.registry.setDefaultLabels({ service: 'tessia-task-runner' });
    new Gauge({
      name: 'tessia_tasks',
      help: 'Tasks in the store, by state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = sources.tasksByState();
        for (const state of TASK_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    new Gauge({
      name: 'tessia_journal_readers',
      help: 'journalctl processes running',
      registers: [this.registry],
      collect() {
        this.set(sources.journalReaders());
      },
    });
    new Gauge({
      name: 'tessia_event_streams',
      help: 'Event streams (GET /v1/events) being served',
      registers: [this.registry],
      collect() {
        this.set(sources.eventStreams());
      },
    });
    new Gauge({
      name: 'tessia_dbus_reconnects',
      help: 'Times the runner connected to systemd again (lost bus, systemd re-executed)',
      registers: [this.registry],
      collect() {
        this.set(sources.dbusReconnects());
      },
    });
    // The client counts (a read is too frequent for an event each): the counter mirrors it.
    this.mirroredCounter(
      'tessia_unit_reads_total',
      "Task units' states read from systemd (after their signals, a reconnect, a start, recovery)",
      () => sources.unitReads(),
    );
    this.mirroredCounter(
      'tessia_dbus_unit_signals_dropped_total',
      "systemd's signals about units the runner does not follow (no longer, or any while it follows more than 256), and ends of jobs it does not wait for, dropped before they were decoded",
      () => sources.unitSignalsDropped(),
    );
    new Gauge({
      name: 'tessia_store_writable',
      help: 'Whether the task store takes writes (0 from a write its file system refused, full or failing, until one succeeds)',
      registers: [this.registry],
      collect() {
        this.set(sources.storeWritable() ? 1 : 0);
      },
    });
    this.mirroredCounter(
      'tessia_store_write_failures_total',
      'Writes the task store refused because its file system is full, failing or read-only (the probes while it does included)',
      () => sources.storeWriteFailures(),
    );
  }

  /** A counter kept elsewhere (a plain number), read at scrape time. */
  private mirroredCounter(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
}
