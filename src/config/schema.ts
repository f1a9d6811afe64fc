import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { FILES_CEILINGS } from '../files/protocol.js';
import { ADMIN_GROUP, RUNNER_USER } from '../package-layout.js';
import './key-meta.js';

/** The accounts of the package: the runner's user and group, and the admins' group. */
const RUNNER_ACCOUNTS: readonly string[] = [RUNNER_USER, ADMIN_GROUP];

/**
 * The runner's configuration file (YAML). Every key has a default; unknown keys are errors. Each key
 * says what it is in its `.meta()`: the configuration reference (tessia-task-runner.yaml(5), README)
 * is written from it (scripts/write-docs.ts), so a key's meaning, unit and default are said here only.
 */

const SIZE_SUFFIXES: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes, as a number or a string with a K/M/G/T suffix (1024-based, like systemd's MemoryMax=). */
const byteSize = z
  .union([z.number().int().positive(), z.string()])
  .meta({ syntax: 'a size: bytes, or a number with K, M, G or T (1024-based, as systemd.resource-control(5) reads them)' })
  .transform((value, context) => {
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

const absolutePath = z.string().refine(isAbsolute, 'must be an absolute path').meta({ syntax: 'an absolute path' });
const systemName = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a system user or group name')
  .meta({ syntax: 'a user or group name' });

export const MachineLimitsSchema = z.strictObject({
  runtimeMaxSec: z.number().min(0.001).nullable().default(null).meta({
    description: "The task's RuntimeMaxSec=: it is stopped after this long, with exit code -2.",
    unit: 'seconds',
    nullMeans: 'no limit',
  }),
  stopGraceSec: z.number().min(0.001).max(3600).default(60).meta({
    description: 'Time between SIGTERM (the CLEANUP section runs) and SIGKILL when the task is stopped.',
    unit: 'seconds',
  }),
  memoryMax: byteSize
    .nullable()
    .default(null)
    .meta({ description: "MemoryMax= of the task's cgroup.", unit: 'bytes', nullMeans: 'no limit' }),
  cpuQuotaPercent: z.number().positive().max(100_000).nullable().default(null).meta({
    description: 'CPUQuota=: CPU time as a percentage of one CPU (200: two CPUs).',
    unit: 'percent of one CPU',
    nullMeans: 'no limit',
  }),
  tasksMax: z.number().int().positive().nullable().default(512).meta({
    description: 'TasksMax=: processes and threads of the task at once.',
    nullMeans: 'no limit',
  }),
  maxActive: z.number().int().positive().max(100_000).nullable().default(null).meta({
    description:
      "Tasks of this machine active (created, running, stopping) at once; one more is refused with 429 MACHINE_BUSY and Retry-After (the mesh's scheduler queues).",
    nullMeans: 'no limit of its own, only `limits.maxActiveTasks`',
  }),
  checkTimeoutSec: z.number().min(0.1).max(600).default(10).meta({
    description:
      "How long the machine's check of a request's parameters (`check`, or a tessia machine's `validate`) may take; longer, it is stopped and the request answered 503 CHECK_TIMEOUT.",
    unit: 'seconds',
  }),
});

export const MachineSandboxSchema = z
  .strictObject({
    user: systemName.nullable().default(null).meta({
      description: 'Run the task as this existing user instead of a dynamic one.',
      nullMeans: 'a dynamic user of its own (DynamicUser=)',
    }),
    group: systemName.nullable().default(null).meta({
      description: "With `user`: the task's group.",
      nullMeans: "the user's own group",
    }),
    privateNetwork: z.boolean().default(false).meta({ description: 'No network but loopback (PrivateNetwork=).' }),
    allowLoopback: z.boolean().default(false).meta({
      description:
        "Let the task reach the host's loopback addresses (127.0.0.0/8, ::1), where the runner's API and other local services listen; false: IPAddressDeny=localhost.",
    }),
    allowRoot: z.boolean().default(false).meta({
      description: 'Let `user` be root (or another user with UID 0), or `group` root: the task is then root, sandbox or not.',
    }),
    readWritePaths: z.array(absolutePath).max(64).default([]).meta({
      description: 'Paths the task may write besides its own working directory and private /tmp (ReadWritePaths=).',
    }),
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
  .refine((argv) => isAbsolute(argv[0] ?? ''), { path: [0], error: 'must be an absolute path' })
  .meta({ syntax: 'a command: a list of its arguments, the first an absolute path' });

/** `package.module:Class`, as Python imports it. */
const PYTHON_CLASS = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$/;

/** A tessia-mesh machine: a Python class with a static run(task) and, optionally, validate(task). */
export const TessiaMachineSchema = z.strictObject({
  class: z.string().max(512).regex(PYTHON_CLASS, 'must be module.path:ClassName').meta({
    description: "The machine's Python class, e.g. `task_runner.machines.echo.machine:EchoMachine`.",
    syntax: '`module.path:ClassName`',
  }),
  pythonPath: z
    .array(absolutePath)
    .max(64)
    .default([])
    .meta({ description: "Directories put at the front of Python's module search path, in order." }),
  python: absolutePath
    .default('/usr/bin/python3')
    .meta({ description: "The interpreter, e.g. a virtualenv's bin/python with the machine's dependencies." }),
});

export const MachineSchema = z
  .strictObject({
    description: z
      .string()
      .max(1000)
      .default('')
      .meta({ description: 'What the machine is, for people reading the config, and for clients with read scope (GET /v1/machines).' }),
    builtin: z.enum(['echo']).optional().meta({
      description: 'A machine built into the runner: echo speaks the tessia test language (README, "The echo machine").',
    }),
    exec: commandLine.optional().meta({
      description:
        'Or the command of an executable. It reads its parameters (JSON) from its standard input, a regular file, and ends with its exit status (docs/machines.md).',
    }),
    tessia: TessiaMachineSchema.optional().meta({
      description: 'Or a tessia-mesh machine (a Python class), run by the host the runner ships (docs/machines.md).',
    }),
    check: commandLine.optional().meta({
      description:
        "With `exec`: a command that checks a request's parameters before anything starts. It runs in a unit of its own with the machine's sandbox, reads the parameters on its standard input, and exits 0 (valid), 1–124 (invalid: the last line it wrote to standard error is the client's 400), or 125 and above when it could not check (500).",
      defaultText: "none; a tessia machine's check is its class's validate",
    }),
    limits: MachineLimitsSchema.default(MachineLimitsSchema.parse({})).meta({ description: "The task's resources and time." }),
    sandbox: MachineSandboxSchema.default(MachineSandboxSchema.parse({})).meta({
      description: 'Who the task runs as and what it may reach, beyond the sandbox every task has (README, "Machines of your own").',
    }),
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

const listenAddress = z
  .string()
  .superRefine((value, context) => {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value)) {
      context.addIssue({ code: 'custom', message: 'must be HOST:PORT' });
    } else if (Number(value.slice(value.lastIndexOf(':') + 1)) > 65535) {
      context.addIssue({ code: 'custom', message: 'port must be between 0 and 65535' });
    }
  })
  .meta({ syntax: '`HOST:PORT`' });

export const MACHINE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** A DNS name or an IP address (IPv6 with or without brackets), as a Host header names the runner. */
const DNS_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;
const hostName = z
  .string()
  .max(253)
  .refine(
    (value) => DNS_NAME.test(value) || isIP(value.replace(/^\[(.*)\]$/, '$1')) !== 0,
    'must be a host name or an IP address (no port)',
  )
  .meta({ syntax: 'a host name or an IP address' });

/** scheme://host[:port] of a web page, as browsers send it in Origin. */
const webOrigin = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value);
      const bare = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hash === '';
      return (url.protocol === 'http:' || url.protocol === 'https:') && bare && !value.endsWith('/');
    } catch {
      return false;
    }
  }, 'must be an origin: http(s)://host[:port], without a path')
  .meta({ syntax: 'an origin: `http(s)://host[:port]`' });

const scope = z.enum(['read', 'write']);
const anonymousScope = z.enum(['none', 'read', 'write']);

export const TokenSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'token names are [A-Za-z0-9_.@-], up to 64')
    .meta({ description: 'Who holds it: logged with every request it makes.', syntax: '1 to 64 characters of `A-Za-z0-9_.@-`' }),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits (sha256 of the token)')
    .meta({
      description:
        'SHA-256 of the token (`read -rs TOKEN; printf %s "$TOKEN" | sha256sum`: read, not typed on a command line, it stays out of the shell history): the token itself is stored nowhere.',
      syntax: '64 hex digits',
    }),
  scope: scope.meta({ description: 'read: list, query, logs; write: also start, stop, delete.' }),
});

/** The machines a config without `machines` has. */
const DEFAULT_MACHINES = { echo: MachineSchema.parse({ builtin: 'echo', description: 'Echo machine (tessia test language)' }) };

export const ConfigSchema = z.strictObject({
  listen: listenAddress.default('127.0.0.1:7356').meta({
    description: 'Where the HTTP API listens (TCP); `serve --listen` overrides it. Off loopback, only with a guard: see `insecure`.',
  }),
  tls: z
    .strictObject({
      cert: absolutePath.meta({ description: "The server's certificate (PEM), with its chain." }),
      key: absolutePath.meta({ description: "The certificate's private key (PEM): readable by the runner's group, e.g. 0640." }),
      clientCa: absolutePath.optional().meta({
        description:
          "Clients must show a certificate signed by this CA (PEM): mutual TLS, as the tessia-mesh control node deploys the runner. Their identity is the certificate's subject.",
        defaultText: 'none (clients show no certificate)',
      }),
      clientScope: scope.default('write').meta({ description: 'What a client with a valid certificate may do.' }),
    })
    .optional()
    .meta({
      description: 'Serve HTTPS instead of HTTP. A reload re-reads the files (rotation in place).',
      defaultText: 'none (plain HTTP)',
      examples: [
        {
          cert: '/etc/tessia-task-runner/tls/server.crt',
          key: '/etc/tessia-task-runner/tls/server.key',
          clientCa: '/etc/tessia-task-runner/tls/mesh-ca.crt',
          clientScope: 'write',
        },
      ],
    }),
  auth: z
    .strictObject({
      tokens: z
        .array(TokenSchema)
        .max(10_000)
        .default([])
        .meta({
          description: 'Bearer tokens (`Authorization: Bearer …`), by their SHA-256, each with a name and a scope.',
          examples: [[{ name: 'mesh-control', sha256: 'ab'.repeat(32), scope: 'write' }]],
        }),
      tokenFile: absolutePath.optional().meta({
        description: 'A YAML file with more tokens (a list of the same shape), e.g. kept apart with mode 0640.',
        defaultText: 'none',
      }),
      anonymous: anonymousScope.default('none').meta({
        description:
          'What a TCP caller without a certificate or token may do. Anything but none lets every local user (and off loopback, with `insecure: true`, everyone who reaches the port) do it; `npm start` sets write.',
      }),
      unixSocket: anonymousScope.default('write').meta({
        description:
          "What a caller on the Unix socket (`unixSocket`, or one systemd passes) may do without a token: the socket's file mode and group decide who can connect, as with Docker's socket.",
      }),
    })
    .default({ tokens: [], anonymous: 'none', unixSocket: 'write' })
    .meta({ description: 'Who may do what: bearer tokens, and what callers who show nothing may do.' }),
  unixSocket: z
    .strictObject({
      path: absolutePath.meta({ description: "The socket file's path." }),
      mode: z
        .string()
        .regex(/^0?[0-7]{3}$/, 'an octal mode like 0660')
        .default('0660')
        .meta({ description: "The socket file's mode.", syntax: 'an octal mode, quoted: `"0660"`' }),
      group: systemName.optional().meta({ description: "The socket file's group.", defaultText: "the runner's group" }),
    })
    .optional()
    .meta({
      description:
        'Also listen on a Unix socket, plain HTTP; its file mode and group decide who may connect (with auth configured, callers must still authenticate). Under socket activation (a .socket unit, as the package has), the sockets systemd passes are used instead of `listen` and this.',
      defaultText: 'none',
      examples: [{ path: '/run/my-runner/api.sock', mode: '0660', group: 'tessia-mesh' }],
    }),
  insecure: z.boolean().default(false).meta({
    description:
      'Listen off loopback without a guard. A guard is client certificates (`tls.clientCa`) or tokens over TLS; without one, everyone who reaches the port may start tasks, or sniff the tokens.',
  }),
  allowedHosts: z
    .array(hostName)
    .max(256)
    .default([])
    .meta({
      description:
        "More names clients reach the runner by: a request whose Host header names none is refused with 421 (DNS rebinding). Always accepted: the listen address, the address the client connected to, `localhost`, 127.0.0.1, ::1 and the host's own name. Ports are not compared; the Unix socket is not checked. The mesh reaches a runner by the names in its certificate: list them.",
      examples: [['runner1.mesh.example']],
    }),
  allowedOrigins: z.array(webOrigin).max(256).default([]).meta({
    description:
      'Web origins whose pages may call the API from a browser (they get CORS headers); a request carrying any other Origin header is refused with 403.',
  }),
  limits: z
    .strictObject({
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024)
        .meta({ description: 'Largest request body; larger is 413.', unit: 'bytes' }),
      maxParameterBytes: z
        .number()
        .int()
        .min(16)
        .max(1024 * 1024)
        .default(256 * 1024)
        .meta({ description: 'Largest `parameters` of a start, as JSON.', unit: 'bytes' }),
      maxJsonDepth: z.number().int().min(2).max(10_000).default(64).meta({ description: 'Deepest nesting of a request body.' }),
      maxActiveTasks: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(1000)
        .meta({ description: 'Tasks created, running or stopping at once, all machines together; one more is 429 with Retry-After.' }),
      maxActiveChecks: z.number().int().min(1).max(64).default(32).meta({
        description:
          "Machines' checks of parameters under way at once, all machines together (each is a unit, a dynamic user and a process); one more is refused with 429 TOO_MANY_CHECKS and Retry-After. The privileged starter runs at most 64 whatever this says.",
      }),
      maxLogStreams: z.number().int().min(1).max(10_000).default(100).meta({
        description:
          "Log streams open at once, all clients together (each is a journalctl process of the runner's own); one more is refused with 429 and Retry-After. A followed stream also takes one of the inotify instances a user may have (fs.inotify.max_user_instances, 128 on most hosts): more than that needs the sysctl raised, and the service unit's TasksMax= and MemoryMax= with it (about 1 MiB and one task a stream).",
      }),
      maxEventStreams: z.number().int().min(1).max(100_000).default(5000).meta({
        description:
          'Event streams (GET /v1/events) open at once, all clients together; one more is refused with 429 and Retry-After. Each costs a connection (a file descriptor: the packaged unit allows 16 384) and no process.',
      }),
      maxFileEntries: z.number().int().min(1).max(FILES_CEILINGS.maxEntries).default(10_000).meta({
        description:
          "Entries of a task's working directory examined for one listing (GET /v1/tasks/{id}/files), listed or not; beyond, the listing says `truncated`.",
      }),
      maxFileDepth: z
        .number()
        .int()
        .min(0)
        .max(FILES_CEILINGS.maxDepth)
        .default(16)
        .meta({ description: "Directories below a task's working directory a listing walks into; deeper, it says `truncated`." }),
      maxFileBytes: byteSize
        .pipe(z.number().max(FILES_CEILINGS.maxBytes))
        .default(1024 ** 3)
        .meta({
          description:
            "The most bytes one download of a task's file serves: a larger file is refused (413) unless the client asks for a part of it with Range.",
          unit: 'bytes',
        }),
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
    })
    .meta({ description: 'What one request, and all of them together, may take.' }),
  retention: z
    .strictObject({
      maxAgeDays: z.number().min(0).max(36_500).nullable().default(30).meta({
        description: 'Finished tasks that ended longer ago than this are pruned.',
        unit: 'days',
        nullMeans: 'kept whatever their age',
      }),
      maxFinished: z.number().int().min(0).max(10_000_000).nullable().default(10_000).meta({
        description: 'At most this many finished tasks are kept, the newest.',
        nullMeans: 'no count',
      }),
      sweepMinutes: z
        .number()
        .min(0.01)
        .max(1440)
        .default(15)
        .meta({ description: 'Pruning runs at start-up and this often.', unit: 'minutes' }),
    })
    .default({ maxAgeDays: 30, maxFinished: 10_000, sweepMinutes: 15 })
    .meta({
      description:
        'How long finished tasks are kept: their records, events and idempotency keys, and their working directories. Active tasks are never pruned; DELETE forgets a task at once whatever this says.',
    }),
  stateDir: absolutePath.optional().meta({
    description: 'Where the task store lives; `serve --state-dir` overrides it.',
    defaultText: '$STATE_DIRECTORY, else /var/lib/tessia-task-runner',
  }),
  log: z
    .strictObject({
      level: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
        .default('info')
        .meta({ description: "The runner's own log: the least severe level it writes." }),
    })
    .default({ level: 'info' })
    .meta({ description: "The runner's own log (journalctl -u tessia-task-runner); task output is the tasks' own." }),
  tasks: z
    .strictObject({
      slice: z
        .string()
        .regex(/^[A-Za-z0-9_.-]+\.slice$/, 'must be a slice unit name')
        .default('tessia-tasks.slice')
        .meta({ description: 'The slice every task unit runs in.', syntax: 'a slice unit name' }),
      stopWaitSec: z
        .number()
        .min(0)
        .max(60)
        .default(0.5)
        .meta({ description: 'How long POST /v1/tasks/{id}/stop waits for the task to end before answering.', unit: 'seconds' }),
      starterSocket: absolutePath.nullable().default(null).meta({
        description:
          "The privileged starter's socket (tessia-task-runner-starter.socket): task units are started through it, so that the runner itself needs no right to start units, and an unprivileged runner stops, kills and resets them through it (without polkit's check each time). The package sets /run/tessia-task-runner-starter.sock.",
        nullMeans: 'the runner starts task units itself, which needs root (npm start, tests)',
      }),
      usageSampleSec: z.number().min(0.1).max(3600).default(10).meta({
        description:
          "How often the usage of each running task (CPU, memory, IO, processes) is read from its cgroup, so that a task's record keeps what it used when it ends: systemd forgets a unit's memory and IO figures once its processes are gone. The peak memory is the kernel's own.",
        unit: 'seconds',
      }),
      filesSocket: absolutePath.nullable().default(null).meta({
        description:
          "The files service's socket (tessia-task-runner-files.socket): tasks' working directories are read through it, since they belong to the tasks' users. The package sets /run/tessia-task-runner-files.sock.",
        nullMeans: "the runner reads tasks' directories itself, which needs root (npm start, tests)",
      }),
    })
    .default({ slice: 'tessia-tasks.slice', stopWaitSec: 0.5, starterSocket: null, usageSampleSec: 10, filesSocket: null })
    .meta({ description: 'How tasks are started, stopped and watched.' }),
  logs: z
    .strictObject({
      heartbeatSec: z
        .number()
        .min(0.1)
        .max(3600)
        .default(10)
        .meta({ description: 'A heartbeat line on an idle log stream this often.', unit: 'seconds' }),
      followSettleSec: z.number().min(0.1).max(60).default(1).meta({
        description:
          'A followed stream ends once its task has finished and journald has delivered nothing new for it for this long: journald lags fast writers.',
        unit: 'seconds',
      }),
    })
    .default({ heartbeatSec: 10, followSettleSec: 1 })
    .meta({ description: 'Log streams (GET /v1/tasks/{id}/logs).' }),
  machines: z
    .record(z.string(), MachineSchema)
    .superRefine((machines, context) => {
      for (const name of Object.keys(machines)) {
        if (!MACHINE_NAME.test(name)) {
          context.addIssue({ code: 'custom', path: [name], message: 'machine names are [a-z][a-z0-9_-]{0,31}' });
        }
      }
    })
    .default(DEFAULT_MACHINES)
    .meta({
      description:
        'Task types by name (`[a-z][a-z0-9_-]`, up to 32 characters): each is exactly one of `builtin`, `exec` or `tessia`. A reload applies them to new tasks; running tasks keep what they started with.',
      syntax: 'a mapping of machine names to machines (the keys below)',
      defaultText: 'the built-in echo machine alone, as `echo: {builtin: echo}`',
      examples: [
        {
          echo: { builtin: 'echo', description: 'Echo machine (tessia test language)' },
          inventory: {
            exec: ['/usr/lib/tessia/machines/inventory', '--verbose'],
            check: ['/usr/lib/tessia/machines/inventory', '--check'],
            description: 'Collects hardware inventory',
            limits: { runtimeMaxSec: 3600, memoryMax: '512M', cpuQuotaPercent: 200, maxActive: 4 },
            sandbox: { privateNetwork: true },
          },
          powerman: {
            tessia: {
              class: 'task_runner.machines.powerman.machine:PowerManagerMachine',
              pythonPath: ['/opt/tessia-mesh/src'],
              python: '/opt/tessia-venvs/powerman/bin/python',
            },
          },
        },
      ],
    }),
});

export type Config = z.infer<typeof ConfigSchema>;
export type MachineConfig = z.infer<typeof MachineSchema>;
