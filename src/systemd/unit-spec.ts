import { TASK_LOG_NAMESPACE } from '../package-layout.js';
import { Variant } from './bus.js';

/**
 * What task units and check units share: the program, its sandbox and its limits, all from the
 * runner's config and a machine, never from request fields. Each member maps to exactly one fixed
 * systemd property below.
 */
export interface SandboxedUnitSpec {
  unitName: string;
  description: string;
  slice: string;
  /** argv[0] must be an absolute path. */
  execStart: string[];
  /** Environment of the process: identifiers only, never parameters. */
  environment: Record<string, string>;
  /** Opened by systemd (as root, before the sandbox) as the process's stdin: the parameters. */
  standardInputFile: string;
  syslogIdentifier: string;
  memoryMaxBytes: number | null;
  cpuQuotaPercent: number | null;
  tasksMax: number | null;
  /** null: a dynamic user is allocated for the unit's lifetime. */
  user: string | null;
  group: string | null;
  privateNetwork: boolean;
  /** false: IPAddressDeny=localhost (the runner's API and other local services are out of reach). */
  allowLoopback: boolean;
  readWritePaths: string[];
}

/** A task: stdout and stderr go to the journal; the unit stays, with its result, until collected. */
export interface TaskUnitSpec extends SandboxedUnitSpec {
  /** journald fields added to every entry of the unit, as KEY=value. */
  logExtraFields: string[];
  stopGraceSec: number;
  runtimeMaxSec: number | null;
  /** Relative to /var/lib; also the working directory. */
  stateDirectory: string;
}

/**
 * A machine's check of a request's parameters: a oneshot unit whose start job ends when the check
 * does, its stderr a file the starter reads, gone once collected.
 */
export interface CheckUnitSpec extends SandboxedUnitSpec {
  /** The start job fails with "timeout" after this long; the check is then killed. */
  timeoutSec: number;
  /** Opened by systemd (as root, before the sandbox) as the check's stderr: its reason. */
  standardErrorFile: string;
}

export type UnitProperty = [string, Variant];

const seconds = (value: number) => BigInt(Math.round(value * 1_000_000));

const AF_INET = 2;
const AF_INET6 = 10;
/** 127.0.0.0/8 and ::1, as IPAddressDeny=localhost means them. */
const LOOPBACK: [number, number[], number][] = [
  [AF_INET, [127, 0, 0, 0], 8],
  [AF_INET6, [...Array<number>(15).fill(0), 1], 128],
];
const EPERM = 1;

/**
 * What no task needs (docs/security.md gives each, and what is kept off and why): the kernel's
 * knobs, logs and clock, other processes, namespaces, realtime, capabilities, and system calls
 * outside a service's usual set (refused with EPERM, not a kill, so a program can fall back).
 * Not MemoryDenyWriteExecute: Node's and Python's JITs need writable executable memory.
 */
const SANDBOX: UnitProperty[] = [
  ['ProtectProc', new Variant('s', 'invisible')],
  ['ProcSubset', new Variant('s', 'pid')],
  ['ProtectKernelLogs', new Variant('b', true)],
  ['ProtectClock', new Variant('b', true)],
  ['ProtectHostname', new Variant('b', true)],
  // The namespaces a task may create: none.
  ['RestrictNamespaces', new Variant('t', 0n)],
  ['RestrictRealtime', new Variant('b', true)],
  ['PrivateIPC', new Variant('b', true)],
  ['CapabilityBoundingSet', new Variant('t', 0n)],
  ['AmbientCapabilities', new Variant('t', 0n)],
  ['SystemCallArchitectures', new Variant('as', ['native'])],
  // [allow-list?, names]
  ['SystemCallFilter', new Variant('(bas)', [true, ['@system-service']])],
  ['SystemCallErrorNumber', new Variant('i', EPERM)],
  ['RestrictAddressFamilies', new Variant('(bas)', [true, ['AF_UNIX', 'AF_INET', 'AF_INET6']])],
  ['UMask', new Variant('u', 0o027)],
];

export function unitProperties(spec: TaskUnitSpec): UnitProperty[] {
  const properties: UnitProperty[] = [
    ['Type', new Variant('s', 'exec')],
    // Keeps the unit (and its Result) after the main process ends, until the runner collects it.
    ['RemainAfterExit', new Variant('b', true)],
    [
      'LogExtraFields',
      new Variant(
        'aay',
        spec.logExtraFields.map((field) => Buffer.from(field, 'utf8')),
      ),
    ],
    ['StandardError', new Variant('s', 'journal')],
    // What the task uses (GET /v1/tasks/{id} shows it, its record keeps it).
    ['CPUAccounting', new Variant('b', true)],
    ['MemoryAccounting', new Variant('b', true)],
    ['IOAccounting', new Variant('b', true)],
    ['TasksAccounting', new Variant('b', true)],
    ['TimeoutStopUSec', new Variant('t', seconds(spec.stopGraceSec))],
    ['StateDirectory', new Variant('as', [spec.stateDirectory])],
    ['WorkingDirectory', new Variant('s', `/var/lib/${spec.stateDirectory}`)],
    ...sandboxedProperties(spec),
  ];
  if (spec.runtimeMaxSec !== null) properties.push(['RuntimeMaxUSec', new Variant('t', seconds(spec.runtimeMaxSec))]);
  return properties;
}

/**
 * The check's reason is one line, read from the end of its stderr file (in the starter's runtime
 * directory, a tmpfs): a check that writes more than this to any file is killed (SIGXFSZ).
 */
export const CHECK_FILE_SIZE_LIMIT = 64 * 1024;
/** After its timeout, a check gets this long from SIGTERM to SIGKILL. */
const CHECK_STOP_GRACE_SEC = 2;
/** Exit statuses that say "invalid": the check did its work (docs/machines.md). */
export const CHECK_INVALID_STATUSES = { first: 1, last: 124 } as const;

export function checkUnitProperties(spec: CheckUnitSpec): UnitProperty[] {
  const invalid = Array.from({ length: CHECK_INVALID_STATUSES.last }, (_, index) => index + CHECK_INVALID_STATUSES.first);
  return [
    // The start job lasts as long as the check. A verdict either way is a success for systemd (no
    // failed unit, no error in the journal for a client's typo); the unit stays, with its exit
    // status, until the starter has read it and collected it.
    ['Type', new Variant('s', 'oneshot')],
    ['RemainAfterExit', new Variant('b', true)],
    ['SuccessExitStatus', new Variant('(aiai)', [invalid, []])],
    ['TimeoutStartUSec', new Variant('t', seconds(spec.timeoutSec))],
    ['TimeoutStopUSec', new Variant('t', seconds(CHECK_STOP_GRACE_SEC))],
    ['StandardErrorFile', new Variant('s', spec.standardErrorFile)],
    // Bounds the reason file in the starter's runtime directory (a tmpfs), whatever the check writes.
    ['LimitFSIZE', new Variant('t', BigInt(CHECK_FILE_SIZE_LIMIT))],
    ['LimitFSIZESoft', new Variant('t', BigInt(CHECK_FILE_SIZE_LIMIT))],
    ...sandboxedProperties(spec),
  ];
}

/** The sandbox of every process the runner has systemd start for a machine: a task, or a check. */
function sandboxedProperties(spec: SandboxedUnitSpec): UnitProperty[] {
  const properties: UnitProperty[] = [
    ['Description', new Variant('s', spec.description)],
    ['Slice', new Variant('s', spec.slice)],
    ['ExecStart', new Variant('a(sasb)', [[spec.execStart[0], spec.execStart, false]])],
    [
      'Environment',
      new Variant(
        'as',
        Object.entries(spec.environment).map(([name, value]) => `${name}=${value}`),
      ),
    ],
    ['StandardInputFile', new Variant('s', spec.standardInputFile)],
    ['StandardOutput', new Variant('s', 'journal')],
    ['SyslogIdentifier', new Variant('s', spec.syslogIdentifier)],
    // Task output goes to a journald of its own, whose settings (no rate limit, its own size
    // limits) the package ships, so the host's journald is left as it is. No per-unit
    // LogRateLimit*: measured on 252, they do not keep a burst of several processes whole (the
    // namespace's RateLimitIntervalSec=0 does), and they would override an admin's rate limit for
    // the namespace (docs/logs.md).
    ['LogNamespace', new Variant('s', TASK_LOG_NAMESPACE)],
    ['KillMode', new Variant('s', 'control-group')],
    ['SendSIGKILL', new Variant('b', true)],
    ['LimitCORE', new Variant('t', 0n)],
    ['LimitCORESoft', new Variant('t', 0n)],
    ['PrivateTmp', new Variant('b', true)],
    ['PrivateDevices', new Variant('b', true)],
    ['ProtectSystem', new Variant('s', 'strict')],
    ['ProtectHome', new Variant('s', 'yes')],
    ['ProtectKernelTunables', new Variant('b', true)],
    ['ProtectKernelModules', new Variant('b', true)],
    ['ProtectControlGroups', new Variant('b', true)],
    ['NoNewPrivileges', new Variant('b', true)],
    ['RestrictSUIDSGID', new Variant('b', true)],
    ['LockPersonality', new Variant('b', true)],
    ['PrivateNetwork', new Variant('b', spec.privateNetwork)],
    ...SANDBOX,
  ];
  if (!spec.allowLoopback) properties.push(['IPAddressDeny', new Variant('a(iayu)', LOOPBACK)]);
  if (spec.user === null) {
    properties.push(['DynamicUser', new Variant('b', true)]);
  } else {
    properties.push(['User', new Variant('s', spec.user)]);
    if (spec.group !== null) properties.push(['Group', new Variant('s', spec.group)]);
  }
  if (spec.readWritePaths.length > 0) properties.push(['ReadWritePaths', new Variant('as', spec.readWritePaths)]);
  if (spec.memoryMaxBytes !== null) properties.push(['MemoryMax', new Variant('t', BigInt(spec.memoryMaxBytes))]);
  if (spec.cpuQuotaPercent !== null) {
    properties.push(['CPUQuotaPerSecUSec', new Variant('t', BigInt(Math.round(spec.cpuQuotaPercent * 10_000)))]);
  }
  if (spec.tasksMax !== null) properties.push(['TasksMax', new Variant('t', BigInt(spec.tasksMax))]);
  return properties;
}
