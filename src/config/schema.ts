import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { FILES_CEILINGS } from '../files/protocol.js';
import { ADMIN_GROUP, RUNNER_USER } from '../package-layout.js';

/** The accounts of the package: the runner's user and group, and the admins' group. */
const RUNNER_ACCOUNTS: readonly string[] = [RUNNER_USER, ADMIN_GROUP];

/** The runner's configuration file (YAML). Every key has a default; unknown keys are errors. */

const SIZE_SUFFIXES: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes, as a number or a string with a K/M/G/T suffix (1024-based, like systemd's MemoryMax=). */
const byteSize = z.union([z.number().int().positive(), z.string()]).transform((value, context) => {
  if (typeof value === 'number') return value;
  const match = /^(\d+)([KMGT]?)$/.exec(value.trim());
  if (!match) {
    context.addIssue({ code: 'custom', message: `"${value}" is not a size (a number with K, M, G or T)` });
    return z.NEVER;
  }
  const bytes = Number(match[1]) * (SIZE_SUFFIXES[match[2] ?? ''] ?? 1);
  if (bytes <= 0 || !Number.isSafeInteger(bytes)) {
    context.addIssue({ code: 'custom', message: `"${value}" must be a positive size` });
    return z.NEVER;
  }
  return bytes;
});

const absolutePath = z.string().refine(isAbsolute, 'must be an absolute path');
const systemName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a system user or group name');

export const MachineLimitsSchema = z.strictObject({
  /** RuntimeMaxSec: the task is stopped (exit code -2) after this long. (Default: no limit) */
  runtimeMaxSec: z.number().min(0.001).nullable().default(null),
  /** Time between SIGTERM (the CLEANUP section runs) and SIGKILL on stop. (Default: 60 s) */
  stopGraceSec: z.number().min(0.001).max(3600).default(60),
  /** MemoryMax of the task's cgroup. (Default: no limit) */
  memoryMax: byteSize.nullable().default(null),
  /** CPU time as a percentage of one CPU (200 = two CPUs). (Default: no limit) */
  cpuQuotaPercent: z.number().positive().max(100_000).nullable().default(null),
  /** TasksMax: processes and threads. (Default: 512) */
  tasksMax: z.number().int().positive().nullable().default(512),
  /**
   * Tasks of this machine active (created, running, stopping) at once; one more is refused with 429
   * MACHINE_BUSY and Retry-After (the mesh's scheduler queues). (Default: no limit but maxActiveTasks)
   */
  maxActive: z.number().int().positive().max(100_000).nullable().default(null),
  /**
   * How long the machine's check of a request's parameters (`check`, or a tessia machine's
   * `validate`) may take; longer, it is stopped and the request answered 503 CHECK_TIMEOUT. (Default: 10 s)
   */
  checkTimeoutSec: z.number().min(0.1).max(600).default(10),
});

export const MachineSandboxSchema = z
  .strictObject({
    /** Run as this existing user instead of a dynamic one. (Default: DynamicUser) */
    user: systemName.nullable().default(null),
    /** With `user`: its group. (Default: the user's own group) */
    group: systemName.nullable().default(null),
    /** No network but loopback. (Default: false) */
    privateNetwork: z.boolean().default(false),
    /**
     * Let the task reach the host's loopback addresses (127.0.0.0/8, ::1), where the runner's API
     * and other local services listen. (Default: false: IPAddressDeny=localhost)
     */
    allowLoopback: z.boolean().default(false),
    /** Let `user` be root (or another user with UID 0): the task is then root, sandbox or not. (Default: false) */
    allowRoot: z.boolean().default(false),
    /** Paths the task may write besides its own state directory and private /tmp. (Default: none) */
    readWritePaths: z.array(absolutePath).max(64).default([]),
  })
  .refine((sandbox) => sandbox.group === null || sandbox.user !== null, {
    path: ['group'],
    error: 'needs "user" (a dynamic user has a dynamic group)',
  })
  .refine((sandbox) => sandbox.user !== 'root' || sandbox.allowRoot, {
    path: ['user'],
    error: 'root: a task would be root on the host; set "allowRoot: true" beside it if that is meant',
  })
  .refine((sandbox) => sandbox.group !== 'root' || sandbox.allowRoot, {
    path: ['group'],
    error: 'root: a task would have root\'s group rights; set "allowRoot: true" beside it if that is meant',
  })
  // The runner's own accounts open the starter's and the files service's sockets, and the API's.
  .refine((sandbox) => !RUNNER_ACCOUNTS.includes(sandbox.user ?? ''), {
    path: ['user'],
    error: "the runner's own user: a task would have the runner's rights (its sockets, its store)",
  })
  .refine((sandbox) => !RUNNER_ACCOUNTS.includes(sandbox.group ?? ''), {
    path: ['group'],
    error: "a group of the runner's: a task could open the runner's sockets",
  });

/** An argv whose program is an absolute path (systemd's ExecStart= takes no search path here). */
const commandLine = z
  .array(z.string().min(1))
  .min(1)
  .max(256)
  .refine((argv) => isAbsolute(argv[0] ?? ''), { path: [0], error: 'must be an absolute path' });

/** `package.module:Class`, as Python imports it. */
const PYTHON_CLASS = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$/;

/** A tessia-mesh machine: a Python class with a static run(task) and, optionally, validate(task). */
export const TessiaMachineSchema = z.strictObject({
  /** The class, as `module.path:ClassName` (e.g. task_runner.machines.echo.machine:EchoMachine). */
  class: z.string().max(512).regex(PYTHON_CLASS, 'must be module.path:ClassName'),
  /** Directories put at the front of Python's module search path, in order. (Default: none) */
  pythonPath: z.array(absolutePath).max(64).default([]),
  /** The interpreter, e.g. a virtualenv's bin/python with the machine's dependencies. (Default: /usr/bin/python3) */
  python: absolutePath.default('/usr/bin/python3'),
});

export const MachineSchema = z
  .strictObject({
    description: z.string().max(1000).default(''),
    /** A machine built into the runner. */
    builtin: z.enum(['echo']).optional(),
    /** Or the argv of an executable; it reads its parameters (JSON) from its standard input, a regular file. */
    exec: commandLine.optional(),
    /** Or a tessia-mesh machine (a Python class), run by the host the runner ships (docs/machines.md). */
    tessia: TessiaMachineSchema.optional(),
    /**
     * With `exec`: a command that checks a request's parameters before anything starts. It runs in a
     * unit of its own with the machine's sandbox, reads the parameters on its standard input, and
     * exits 0 (valid), 1–124 (invalid: the last line it wrote to standard error is the client's 400),
     * or 125 and above when it could not check (500). (Default: none; a tessia machine's check is its
     * class's validate)
     */
    check: commandLine.optional(),
    limits: MachineLimitsSchema.default(MachineLimitsSchema.parse({})),
    sandbox: MachineSandboxSchema.default(MachineSandboxSchema.parse({})),
  })
  .superRefine((machine, context) => {
    const kinds = [machine.builtin, machine.exec, machine.tessia].filter((kind) => kind !== undefined);
    if (kinds.length !== 1) {
      context.addIssue({ code: 'custom', message: 'needs exactly one of "builtin", "exec" or "tessia"' });
    }
    if (machine.check !== undefined && machine.exec === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['check'],
        message: 'only with "exec" (the built-in echo checks its scripts itself; a tessia machine calls its class\'s validate)',
      });
    }
  });

const listenAddress = z.string().superRefine((value, context) => {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value)) {
    context.addIssue({ code: 'custom', message: 'must be HOST:PORT' });
  } else if (Number(value.slice(value.lastIndexOf(':') + 1)) > 65535) {
    context.addIssue({ code: 'custom', message: 'port must be between 0 and 65535' });
  }
});

export const MACHINE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** A DNS name or an IP address (IPv6 with or without brackets), as a Host header names the runner. */
const DNS_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;
const hostName = z
  .string()
  .max(253)
  .refine(
    (value) => DNS_NAME.test(value) || isIP(value.replace(/^\[(.*)\]$/, '$1')) !== 0,
    'must be a host name or an IP address (no port)',
  );

/** scheme://host[:port] of a web page, as browsers send it in Origin. */
const webOrigin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    const bare = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hash === '';
    return (url.protocol === 'http:' || url.protocol === 'https:') && bare && !value.endsWith('/');
  } catch {
    return false;
  }
}, 'must be an origin: http(s)://host[:port], without a path');

const scope = z.enum(['read', 'write']);
/** What a caller may do without showing who they are: none (401), read, or write. */
const anonymousScope = z.enum(['none', 'read', 'write']);

export const TokenSchema = z.strictObject({
  /** Who holds it: logged with every request it makes. */
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'token names are [A-Za-z0-9_.@-], up to 64'),
  /** SHA-256 of the token, hex: the token itself is never stored. (`printf %s TOKEN | sha256sum`) */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits (sha256 of the token)'),
  /** read: list, query, logs; write: also start, stop, delete. */
  scope,
});

export const ConfigSchema = z.strictObject({
  /** HOST:PORT of the HTTP listener. (Default: 127.0.0.1:7356) */
  listen: listenAddress.default('127.0.0.1:7356'),
  /**
   * Serve HTTPS. With `clientCa`, clients must show a certificate signed by it (mutual TLS, as the
   * tessia-mesh control node deploys the runner); their identity is the certificate's subject.
   */
  tls: z
    .strictObject({
      cert: absolutePath,
      key: absolutePath,
      clientCa: absolutePath.optional(),
      /** What a client with a valid certificate may do. (Default: write) */
      clientScope: scope.default('write'),
    })
    .optional(),
  auth: z
    .strictObject({
      /** Bearer tokens (Authorization: Bearer …), by their SHA-256. (Default: none) */
      tokens: z.array(TokenSchema).max(10_000).default([]),
      /** A YAML file with more tokens (a list of the same shape), e.g. kept apart with mode 0640. */
      tokenFile: absolutePath.optional(),
      /**
       * What a TCP caller without a certificate or token may do. Anything but none lets every local
       * user (and off loopback, with `insecure: true`, everyone who reaches the port) do it.
       * (Default: none; `npm start` sets write)
       */
      anonymous: anonymousScope.default('none'),
      /**
       * What a caller on the Unix socket (`unixSocket`, or one systemd passes) may do without a
       * token: the socket's file mode and group decide who can connect, as with Docker's socket.
       * (Default: write)
       */
      unixSocket: anonymousScope.default('write'),
    })
    .default({ tokens: [], anonymous: 'none', unixSocket: 'write' }),
  /**
   * Also listen on a Unix socket, plain HTTP; its file mode and group decide who may connect (with
   * auth configured, callers must still authenticate). Under socket activation (a .socket unit),
   * the sockets systemd passes are used instead of `listen` and this. (Default: none)
   */
  unixSocket: z
    .strictObject({
      path: absolutePath,
      /** Octal file mode. (Default: 0660) */
      mode: z
        .string()
        .regex(/^0?[0-7]{3}$/, 'an octal mode like 0660')
        .default('0660'),
      /** Group of the socket file. (Default: the runner's group) */
      group: systemName.optional(),
    })
    .optional(),
  /**
   * Listen off loopback without a guard: only client certificates (`tls.clientCa`) or tokens over TLS
   * count as one. Without, everyone who reaches the port may start tasks, or sniff the tokens. (Default: false)
   */
  insecure: z.boolean().default(false),
  /**
   * More names clients reach the runner by: a request whose Host header names none is refused with
   * 421 (DNS rebinding). Always accepted: the listen address, the address the client connected to,
   * `localhost`, 127.0.0.1, ::1 and the host's own name (hostname). Ports are not compared; the Unix
   * socket is not checked. The mesh reaches a runner by the names in its certificate: list them.
   * (Default: none besides those)
   */
  allowedHosts: z.array(hostName).max(256).default([]),
  /**
   * Web origins (`https://host[:port]`) whose pages may call the API from a browser (they get CORS
   * headers); a request carrying any other Origin header is refused with 403. (Default: none)
   */
  allowedOrigins: z.array(webOrigin).max(256).default([]),
  limits: z
    .strictObject({
      /** Largest request body. (Default: 1 MiB) */
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      /** Largest `parameters`, as JSON. (Default: 256 KiB) */
      maxParameterBytes: z
        .number()
        .int()
        .min(16)
        .max(1024 * 1024)
        .default(256 * 1024),
      /** Deepest nesting of a request body. (Default: 64) */
      maxJsonDepth: z.number().int().min(2).max(10_000).default(64),
      /** Tasks created/running/stopping at once; more → 429 with Retry-After. (Default: 1000) */
      maxActiveTasks: z.number().int().min(1).max(100_000).default(1000),
      /**
       * Machines' checks of parameters under way at once, all machines together (each is a unit, a
       * dynamic user and a process); one more is refused with 429 TOO_MANY_CHECKS and Retry-After.
       * The privileged starter runs at most 64 whatever this says. (Default: 32)
       */
      maxActiveChecks: z.number().int().min(1).max(64).default(32),
      /**
       * Log streams open at once, all clients together (each is a journalctl process of the runner's
       * own); one more is refused with 429 and Retry-After. A followed stream also takes one of the
       * inotify instances a user may have (fs.inotify.max_user_instances, 128 on most hosts): more
       * than that needs the sysctl raised, and the service unit's TasksMax= and MemoryMax= with it
       * (about 1 MiB and one task a stream). (Default: 100)
       */
      maxLogStreams: z.number().int().min(1).max(10_000).default(100),
      /**
       * Event streams (GET /v1/events) open at once, all clients together; one more is refused with
       * 429 and Retry-After. Each costs a connection (a file descriptor: the packaged unit allows
       * 16 384) and no process. (Default: 5000)
       */
      maxEventStreams: z.number().int().min(1).max(100_000).default(5000),
      /**
       * Entries of a task's working directory examined for one listing (GET /v1/tasks/{id}/files),
       * listed or not; beyond, the listing says `truncated`. (Default: 10 000)
       */
      maxFileEntries: z.number().int().min(1).max(FILES_CEILINGS.maxEntries).default(10_000),
      /** Directories below a task's working directory a listing walks into; deeper, it says `truncated`. (Default: 16) */
      maxFileDepth: z.number().int().min(0).max(FILES_CEILINGS.maxDepth).default(16),
      /**
       * The most bytes one download of a task's file serves: a larger file is refused (413) unless
       * the client asks for a part of it with Range. (Default: 1 GiB)
       */
      maxFileBytes: byteSize.pipe(z.number().max(FILES_CEILINGS.maxBytes)).default(1024 ** 3),
    })
    .default({
      maxBodyBytes: 1024 * 1024,
      maxParameterBytes: 256 * 1024,
      maxJsonDepth: 64,
      maxActiveTasks: 1000,
      maxActiveChecks: 32,
      maxLogStreams: 100,
      maxEventStreams: 5000,
      maxFileEntries: 10_000,
      maxFileDepth: 16,
      maxFileBytes: 1024 ** 3,
    }),
  /**
   * How long finished tasks are kept: their records, events and idempotency keys, and their working
   * directories. Active tasks are never pruned; DELETE forgets a task at once whatever this says.
   */
  retention: z
    .strictObject({
      /** Finished tasks that ended longer ago than this are pruned; null: kept whatever their age. (Default: 30) */
      maxAgeDays: z.number().min(0).max(36_500).nullable().default(30),
      /** At most this many finished tasks are kept, the newest; null: no count. (Default: 10 000) */
      maxFinished: z.number().int().min(0).max(10_000_000).nullable().default(10_000),
      /** Pruning runs at start-up and this often. (Default: 15 min) */
      sweepMinutes: z.number().min(0.01).max(1440).default(15),
    })
    .default({ maxAgeDays: 30, maxFinished: 10_000, sweepMinutes: 15 }),
  /** Where the task store lives. (Default: $STATE_DIRECTORY, else /var/lib/tessia-task-runner) */
  stateDir: absolutePath.optional(),
  log: z
    .strictObject({
      /** pino level. (Default: info) */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    })
    .default({ level: 'info' }),
  tasks: z
    .strictObject({
      /** The slice every task unit runs in. (Default: tessia-tasks.slice) */
      slice: z
        .string()
        .regex(/^[A-Za-z0-9_.-]+\.slice$/, 'must be a slice unit name')
        .default('tessia-tasks.slice'),
      /** How long POST /v1/tasks/{id}/stop waits for the task to end before answering. (Default: 0.5 s) */
      stopWaitSec: z.number().min(0).max(60).default(0.5),
      /**
       * The privileged starter's socket (tessia-task-runner-starter.socket): task units are started
       * through it, so that the runner itself needs no right to start units. null: the runner starts
       * them itself, which needs root's power (npm start, tests). (Default: null; the package sets
       * /run/tessia-task-runner-starter.sock)
       */
      starterSocket: absolutePath.nullable().default(null),
      /**
       * How often the usage of each running task (CPU, memory, IO, processes) is read from its
       * cgroup, so that a task's record keeps what it used when it ends: systemd forgets a unit's
       * memory and IO figures once its processes are gone. The peak memory is the kernel's own.
       * (Default: 10 s)
       */
      usageSampleSec: z.number().min(0.1).max(3600).default(10),
      /**
       * The files service's socket (tessia-task-runner-files.socket): tasks' working directories are
       * read through it, since they belong to the tasks' users. null: the runner reads them itself,
       * which needs root's power (npm start, tests). (Default: null; the package sets
       * /run/tessia-task-runner-files.sock)
       */
      filesSocket: absolutePath.nullable().default(null),
    })
    .default({ slice: 'tessia-tasks.slice', stopWaitSec: 0.5, starterSocket: null, usageSampleSec: 10, filesSocket: null }),
  logs: z
    .strictObject({
      /** A heartbeat line on an idle log stream this often. (Default: 10 s) */
      heartbeatSec: z.number().min(0.1).max(3600).default(10),
      /**
       * A followed stream ends once its task has finished and journald has delivered nothing new for
       * it for this long: journald lags fast writers. (Default: 1 s)
       */
      followSettleSec: z.number().min(0.1).max(60).default(1),
    })
    .default({ heartbeatSec: 10, followSettleSec: 1 }),
  /** Task types by name. (Default: the built-in echo machine) */
  machines: z
    .record(z.string(), MachineSchema)
    .superRefine((machines, context) => {
      for (const name of Object.keys(machines)) {
        if (!MACHINE_NAME.test(name)) {
          context.addIssue({ code: 'custom', path: [name], message: 'machine names are [a-z][a-z0-9_-]{0,31}' });
        }
      }
    })
    .default({ echo: MachineSchema.parse({ builtin: 'echo', description: 'Echo machine (tessia test language)' }) }),
});

export type Config = z.infer<typeof ConfigSchema>;
export type MachineConfig = z.infer<typeof MachineSchema>;
