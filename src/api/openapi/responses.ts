/**
 * What the API answers, as zod schemas: the OpenAPI document's response schemas, and the types the
 * CLI reads answers with. Each mirrors what a route sends (views.ts, log-views.ts, events-route.ts);
 * test/unit/openapi.test.ts checks at compile time that the two agree, and the integration test
 * validates real answers against the document.
 */
import { z } from 'zod';
import { MACHINE_KINDS } from '../../machines/registry.js';
import { CURSOR_PATTERN } from '../../tasks/logs.js';
import { TASK_STATES, type TaskState as TaskStateName } from '../../tasks/model.js';
import { TASK_ID_PATTERN } from '../../tasks/unit-names.js';

/** UTC, with up to microseconds: `2026-11-27T23:04:16.573395Z`. */
const time = () => z.iso.datetime();

export const TaskState = z
  .enum(TASK_STATES as [TaskStateName, ...TaskStateName[]])
  .meta({ id: 'TaskState', description: 'created → running → stopping → exited; lost: the unit vanished without a result' });

const TaskId = z.string().regex(TASK_ID_PATTERN).meta({ description: '8 hex digits' });

const ExitCode = z.number().int().meta({
  description: "0 success, -1 stopped on request, -2 runtime limit reached, -3 exception, -99 undetermined, else the machine's own",
});

export const TaskUsage = z
  .object({
    cpuNsec: z.number().int().nullable().meta({ description: 'CPU time, user and system, in nanoseconds' }),
    memoryBytes: z.number().int().nullable().meta({ description: 'memory in use now (0 once the task has ended)' }),
    memoryPeakBytes: z.number().int().nullable().meta({ description: 'the most memory it used at once, over its life so far' }),
    ioReadBytes: z.number().int().nullable(),
    ioWriteBytes: z.number().int().nullable(),
    tasks: z.number().int().nullable().meta({ description: 'processes and threads now' }),
    sampledAt: time().meta({ description: 'when these were read' }),
  })
  .meta({
    id: 'TaskUsage',
    description: "what the task cost, from its cgroup's counters; null where this host's cgroup hierarchy does not count it",
  });

export const MachineInfo = z
  .object({
    name: z.string(),
    description: z.string().meta({ description: "the config's description of it ('' when none)" }),
    kind: z.enum(MACHINE_KINDS).meta({ description: 'built into the runner, an executable, or a tessia-mesh Python class' }),
  })
  .meta({ id: 'Machine', description: 'a machine new tasks may run (its command, environment and sandbox are not shown)' });

export const BriefTask = z.object({ taskId: TaskId, state: TaskState }).meta({ id: 'BriefTask', description: 'the tessia v1 list item' });

export const Task = z
  .object({
    taskId: TaskId,
    state: TaskState,
    machine: z.string(),
    exitCode: ExitCode.nullable().meta({ description: 'null until the task has finished' }),
    result: z.string().nullable().meta({ description: "systemd's Result of the unit (success, exit-code, timeout, signal, oom-kill, …)" }),
    detail: z.string().nullable().meta({ description: 'why the task ended the way it did, or how it came to be, for humans' }),
    createdAt: time(),
    startedAt: time().nullable(),
    finishedAt: time().nullable(),
    unit: z.string().meta({ description: 'tessia-task-<taskId>.service' }),
    invocationId: z.string().nullable().meta({ description: "systemd's InvocationID of the unit's run" }),
    stopRequested: z.boolean(),
    usage: TaskUsage.nullable().meta({
      description:
        "read just now for a task that runs (GET of one task), else the last one kept: a finished task's is the one it ended with",
    }),
  })
  .meta({ id: 'Task' });

/** A line of the task event stream (GET /v1/events): a change of a task's state. */
export const TaskEventLine = z
  .object({
    type: z.literal('task'),
    id: z.number().int().min(1).meta({ description: 'orders the events, across restarts; resume after it (after=, Last-Event-ID)' }),
    taskId: TaskId,
    machine: z.string(),
    state: TaskState,
    exitCode: ExitCode.nullable(),
    result: z.string().nullable(),
    detail: z.string().nullable(),
    at: time().meta({
      description: "when the change happened: systemd's time for a start or an end, the runner's for the rest (it may not grow with id)",
    }),
    recovered: z.boolean().meta({ description: 'it happened while the runner was not watching, and recovery found it' }),
    deleted: z.boolean().meta({
      description: 'a DELETE: the task is gone from the API from this event on (state: the one it had); its events stay until retention',
    }),
  })
  .meta({ id: 'TaskEventLine' });

const Heartbeat = z
  .object({ type: z.literal('heartbeat'), time: time() })
  .meta({ id: 'Heartbeat', description: 'sent on an idle stream, so that clients and proxies see it is alive' });

export const EventLine = z
  .discriminatedUnion('type', [
    TaskEventLine,
    Heartbeat,
    z
      .object({
        type: z.literal('shutdown'),
        detail: z.string(),
        after: z.number().int().min(0).meta({ description: 'the last event id sent: resume with after=<it>' }),
      })
      .meta({ id: 'EventsShutdownLine', description: 'the last line when the runner shuts down' }),
  ])
  .meta({ id: 'EventLine', description: 'one line of an NDJSON event stream' });

const FieldValue = z.union([z.string(), z.object({ base64: z.string() })]);
const FieldValues = z.union([FieldValue, z.array(FieldValue)]);

export const LogLine = z
  .discriminatedUnion('type', [
    z
      .object({
        type: z.literal('entry'),
        cursor: z.string().regex(CURSOR_PATTERN).meta({ description: 'resume after this entry: after=<cursor>' }),
        timestamp: time().nullable(),
        priority: z.number().int().min(0).max(7),
        priorityName: z.string(),
        message: z.string(),
        messageRaw: FieldValues.optional().meta({ description: 'the exact value(s), when the message is not one plain string' }),
        source: z.enum(['task', 'systemd']),
        fields: z
          .record(z.string(), FieldValues)
          .meta({ description: 'text as a string, other bytes as {base64}, repeated fields as arrays' }),
      })
      .meta({ id: 'LogEntryLine' }),
    Heartbeat,
    z
      .object({
        type: z.literal('end'),
        taskId: TaskId,
        state: TaskState,
        exitCode: ExitCode.nullable(),
        result: z.string().nullable(),
        finishedAt: time().nullable(),
        detail: z.string().nullable(),
      })
      .meta({ id: 'LogEndLine', description: 'the last line of a followed stream, once the task has ended' }),
    z
      .object({ type: z.literal('shutdown'), detail: z.string(), after: z.string().nullable() })
      .meta({ id: 'LogShutdownLine', description: 'the runner shuts down: resume with after=<the cursor>' }),
    z.object({ type: z.literal('error'), detail: z.string() }).meta({ id: 'LogErrorLine', description: 'reading the journal failed' }),
  ])
  .meta({ id: 'LogLine', description: 'one line of an NDJSON log stream' });

export const FileListing = z
  .object({
    files: z.array(
      z
        .object({
          path: z.string().meta({ description: 'relative to the working directory, /-separated' }),
          type: z.enum(['file', 'directory']),
          size: z.number().int().min(0).meta({ description: 'bytes (a directory: what the file system says of it)' }),
          modified: time(),
        })
        .meta({ id: 'FileEntry' }),
    ),
    truncated: z.boolean().meta({ description: 'limits.maxFileEntries or limits.maxFileDepth stopped the walk' }),
  })
  .meta({ id: 'FileListing', description: "the task's regular files and directories, by path" });

export const ServiceRoot = z
  .object({
    name: z.literal('task_runner'),
    apis: z.array(z.object({ root: z.string(), version: z.string(), min_version: z.string() })),
  })
  .meta({ id: 'ServiceRoot', description: 'the tessia-mesh service discovery answer' });

export const Success = z.object({ success: z.literal(true) }).meta({ id: 'Success' });

export const Health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const Readiness = z
  .object({
    status: z.enum(['ready', 'not ready']),
    checks: z.record(z.string(), z.boolean()).meta({ description: 'each thing readiness needs (dbus, store) and whether it is there' }),
  })
  .meta({ id: 'Readiness' });

export const ApiSchema = z
  .record(z.string(), z.object({ description: z.string(), methods: z.record(z.string(), z.string()) }))
  .meta({ id: 'ApiSchema', description: 'tessia-compatible: what each path (relative to /v1) does, by method' });

export const OpenApiDocument = z
  .looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }) })
  .meta({ id: 'OpenApiDocument', description: 'this document' });

/** What the API answers, as its clients (the CLI) read it. */
export type TaskView = z.infer<typeof Task>;
export type BriefTaskView = z.infer<typeof BriefTask>;
export type LogLineView = z.infer<typeof LogLine>;
export type EventLineView = z.infer<typeof EventLine>;
export type FileListingView = z.infer<typeof FileListing>;
