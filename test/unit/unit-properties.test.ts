import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { Machine, MachineRegistry, type TaskUnitContext } from '../../src/machines/registry.js';
import { TASK_LOG_NAMESPACE } from '../../src/package-layout.js';
import { checkUnitProperties, unitProperties } from '../../src/systemd/unit-spec.js';

const CONTEXT: TaskUnitContext = {
  taskId: '3f9c2a1b',
  unitName: 'tessia-task-3f9c2a1b.service',
  machineName: 'inventory',
  slice: 'tessia-tasks.slice',
  parametersFile: '/run/tessia-task-runner/parameters/3f9c2a1b',
};
const INVENTORY = ['/usr/lib/tessia/machines/inventory', '--verbose'];

/** The machine `name` as the config loader makes it from this document. */
function machineFrom(name: string, document: Record<string, unknown>): Machine {
  const machine = new MachineRegistry(validateConfig({ machines: { [name]: document } }).machines).get(name);
  assert.ok(machine, `no machine ${name}`);
  return machine;
}

/** The transient unit's properties for a task of the inventory machine with this config, by name. */
function propertiesOf(document: Record<string, unknown> = {}): Map<string, { signature: string; value: unknown }> {
  const properties = unitProperties(machineFrom('inventory', { exec: INVENTORY, ...document }).unitSpec(CONTEXT));
  const byName = new Map(properties.map(([name, variant]) => [name, variant as { signature: string; value: unknown }]));
  assert.equal(byName.size, properties.length, 'a property is set twice');
  return byName;
}

/** One property as [signature, value]; fails when it is not set. */
function property(properties: Map<string, { signature: string; value: unknown }>, name: string): [string, unknown] {
  const variant = properties.get(name);
  assert.ok(variant, `${name} is not set`);
  return [variant.signature, variant.value];
}

describe('unit properties every task gets', () => {
  const properties = propertiesOf();

  it('makes an exec unit in the tasks slice that stays after its main process ends.', () => {
    assert.deepEqual(property(properties, 'Type'), ['s', 'exec']);
    assert.deepEqual(property(properties, 'RemainAfterExit'), ['b', true]);
    assert.deepEqual(property(properties, 'Slice'), ['s', 'tessia-tasks.slice']);
    assert.deepEqual(property(properties, 'Description'), ['s', 'tessia task 3f9c2a1b (inventory)']);
  });

  it('runs the machine executable with its argv from the config.', () => {
    assert.deepEqual(property(properties, 'ExecStart'), ['a(sasb)', [[INVENTORY[0], INVENTORY, false]]]);
  });

  it("runs a built-in machine with the runner's own node.", () => {
    const spec = machineFrom('echo', { builtin: 'echo' }).unitSpec({ ...CONTEXT, machineName: 'echo' });
    assert.equal(spec.execStart.length, 2);
    assert.equal(spec.execStart[0], process.execPath);
    assert.match(spec.execStart[1] ?? '', /\/machines\/echo\/main\.js$/);
  });

  it('gives the task its parameters file as stdin, and the journal as stdout and stderr.', () => {
    assert.deepEqual(property(properties, 'StandardInputFile'), ['s', CONTEXT.parametersFile]);
    assert.deepEqual(property(properties, 'StandardOutput'), ['s', 'journal']);
    assert.deepEqual(property(properties, 'StandardError'), ['s', 'journal']);
    assert.deepEqual(property(properties, 'SyslogIdentifier'), ['s', 'tessia-inventory']);
  });

  it('puts only the task id and machine name in the environment, and in every journal entry.', () => {
    const identifiers = ['TESSIA_TASK_ID=3f9c2a1b', 'TESSIA_MACHINE=inventory'];
    assert.deepEqual(property(properties, 'Environment'), ['as', identifiers]);
    const [signature, fields] = property(properties, 'LogExtraFields');
    assert.equal(signature, 'aay');
    assert.ok(Array.isArray(fields));
    assert.deepEqual(
      fields.map((field: Buffer) => field.toString('utf8')),
      identifiers,
    );
  });

  it('gives the task its own state directory as its working directory.', () => {
    assert.deepEqual(property(properties, 'StateDirectory'), ['as', ['tessia-tasks/3f9c2a1b']]);
    assert.deepEqual(property(properties, 'WorkingDirectory'), ['s', '/var/lib/tessia-tasks/3f9c2a1b']);
  });

  it('sandboxes the task: private /tmp and devices, read-only system, no home, no new privileges.', () => {
    const expected: [string, [string, unknown]][] = [
      ['PrivateTmp', ['b', true]],
      ['PrivateDevices', ['b', true]],
      ['ProtectSystem', ['s', 'strict']],
      ['ProtectHome', ['s', 'yes']],
      ['ProtectKernelTunables', ['b', true]],
      ['ProtectKernelModules', ['b', true]],
      ['ProtectControlGroups', ['b', true]],
      ['NoNewPrivileges', ['b', true]],
      ['RestrictSUIDSGID', ['b', true]],
      ['LockPersonality', ['b', true]],
      ['ProtectProc', ['s', 'invisible']],
      ['ProcSubset', ['s', 'pid']],
      ['ProtectKernelLogs', ['b', true]],
      ['ProtectClock', ['b', true]],
      ['ProtectHostname', ['b', true]],
      ['RestrictNamespaces', ['t', 0n]],
      ['RestrictRealtime', ['b', true]],
      ['PrivateIPC', ['b', true]],
      ['CapabilityBoundingSet', ['t', 0n]],
      ['AmbientCapabilities', ['t', 0n]],
      ['SystemCallArchitectures', ['as', ['native']]],
      ['SystemCallFilter', ['(bas)', [true, ['@system-service']]]],
      ['SystemCallErrorNumber', ['i', 1]],
      ['RestrictAddressFamilies', ['(bas)', [true, ['AF_UNIX', 'AF_INET', 'AF_INET6']]]],
      ['UMask', ['u', 0o027]],
    ];
    for (const [name, value] of expected) assert.deepEqual(property(properties, name), value, name);
    assert.equal(properties.has('MemoryDenyWriteExecute'), false, "JITs (node's, python's) need W+X memory");
  });

  it('kills the whole control group on stop, SIGKILL after the grace period, and writes no core dumps.', () => {
    assert.deepEqual(property(properties, 'KillMode'), ['s', 'control-group']);
    assert.deepEqual(property(properties, 'SendSIGKILL'), ['b', true]);
    assert.deepEqual(property(properties, 'LimitCORE'), ['t', 0n]);
    assert.deepEqual(property(properties, 'LimitCORESoft'), ['t', 0n]);
  });

  it("logs to the tasks' journal namespace, whose journald settings decide the rate limit (no per-unit one).", () => {
    assert.deepEqual(property(properties, 'LogNamespace'), ['s', TASK_LOG_NAMESPACE]);
    const shipped = new URL(`../../units/journald@${TASK_LOG_NAMESPACE}.conf.d/60-tessia-task-runner.conf`, import.meta.url);
    assert.match(readFileSync(shipped, 'utf8'), /^RateLimitIntervalSec=0$/m, 'the package configures that very namespace');
    for (const name of ['LogRateLimitIntervalUSec', 'LogRateLimitBurst']) assert.equal(properties.has(name), false, name);
  });
});

describe('unit properties from the machine limits', () => {
  it('uses the default limits: a 60 s stop grace period, 512 tasks, no runtime, memory or CPU limit.', () => {
    const properties = propertiesOf();
    assert.deepEqual(property(properties, 'TimeoutStopUSec'), ['t', 60_000_000n]);
    assert.deepEqual(property(properties, 'TasksMax'), ['t', 512n]);
    for (const name of ['RuntimeMaxUSec', 'MemoryMax', 'CPUQuotaPerSecUSec']) {
      assert.equal(properties.has(name), false, name);
    }
  });

  it('turns runtimeMaxSec and stopGraceSec into microseconds.', () => {
    const properties = propertiesOf({ limits: { runtimeMaxSec: 3600, stopGraceSec: 2.5 } });
    assert.deepEqual(property(properties, 'RuntimeMaxUSec'), ['t', 3_600_000_000n]);
    assert.deepEqual(property(properties, 'TimeoutStopUSec'), ['t', 2_500_000n]);
  });

  it('turns memoryMax with a suffix into bytes.', () => {
    assert.deepEqual(property(propertiesOf({ limits: { memoryMax: '512M' } }), 'MemoryMax'), ['t', 536_870_912n]);
    assert.deepEqual(property(propertiesOf({ limits: { memoryMax: 4096 } }), 'MemoryMax'), ['t', 4096n]);
  });

  it('turns cpuQuotaPercent into CPU time per second: 200 % is two seconds.', () => {
    const quota = (percent: number) => property(propertiesOf({ limits: { cpuQuotaPercent: percent } }), 'CPUQuotaPerSecUSec');
    assert.deepEqual(quota(200), ['t', 2_000_000n]);
    assert.deepEqual(quota(12.5), ['t', 125_000n]);
  });

  it('sets TasksMax from the config, and none when it is null.', () => {
    assert.deepEqual(property(propertiesOf({ limits: { tasksMax: 64 } }), 'TasksMax'), ['t', 64n]);
    assert.equal(propertiesOf({ limits: { tasksMax: null } }).has('TasksMax'), false);
  });
});

describe('unit properties from the machine sandbox', () => {
  it('runs the task as a dynamic user by default, with no User or Group.', () => {
    const properties = propertiesOf();
    assert.deepEqual(property(properties, 'DynamicUser'), ['b', true]);
    assert.equal(properties.has('User'), false);
    assert.equal(properties.has('Group'), false);
  });

  it('runs the task as the configured user and group instead of a dynamic one.', () => {
    const properties = propertiesOf({ sandbox: { user: 'tessia', group: 'tessia-ops' } });
    assert.deepEqual(property(properties, 'User'), ['s', 'tessia']);
    assert.deepEqual(property(properties, 'Group'), ['s', 'tessia-ops']);
    assert.equal(properties.has('DynamicUser'), false);
  });

  it('sets no Group for a configured user without a group.', () => {
    const properties = propertiesOf({ sandbox: { user: 'tessia' } });
    assert.deepEqual(property(properties, 'User'), ['s', 'tessia']);
    assert.equal(properties.has('Group'), false);
    assert.equal(properties.has('DynamicUser'), false);
  });

  it('keeps the network unless privateNetwork is set.', () => {
    assert.deepEqual(property(propertiesOf(), 'PrivateNetwork'), ['b', false]);
    assert.deepEqual(property(propertiesOf({ sandbox: { privateNetwork: true } }), 'PrivateNetwork'), ['b', true]);
  });

  it("denies the host's loopback addresses unless allowLoopback is set.", () => {
    const loopback = [
      [2, [127, 0, 0, 0], 8],
      [10, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128],
    ];
    assert.deepEqual(property(propertiesOf(), 'IPAddressDeny'), ['a(iayu)', loopback]);
    assert.equal(propertiesOf({ sandbox: { allowLoopback: true } }).has('IPAddressDeny'), false);
  });

  it('adds ReadWritePaths only when paths are configured.', () => {
    assert.equal(propertiesOf().has('ReadWritePaths'), false);
    const properties = propertiesOf({ sandbox: { readWritePaths: ['/srv/inventory', '/var/cache/inventory'] } });
    assert.deepEqual(property(properties, 'ReadWritePaths'), ['as', ['/srv/inventory', '/var/cache/inventory']]);
  });
});

describe("a check's unit", () => {
  const CHECK_CONTEXT = {
    checkId: '0123456789abcdef',
    unitName: 'tessia-check-0123456789abcdef.service',
    slice: 'tessia-tasks.slice',
    parametersFile: '/run/tessia-task-runner-starter/parameters/check-0123456789abcdef.json',
    reasonFile: '/run/tessia-task-runner-starter/parameters/check-0123456789abcdef.reason',
  };
  const document = {
    exec: INVENTORY,
    check: ['/usr/lib/tessia/machines/inventory', '--check'],
    limits: { memoryMax: '256M', tasksMax: 16, checkTimeoutSec: 5 },
    sandbox: { readWritePaths: ['/srv/inventory'], allowLoopback: true },
  };
  const byName = (properties: ReturnType<typeof unitProperties>) => new Map(properties.map(([name, variant]) => [name, variant]));
  const check = byName(checkUnitProperties(machineFrom('inventory', document).checkUnitSpec(CHECK_CONTEXT)));
  const task = byName(unitProperties(machineFrom('inventory', document).unitSpec(CONTEXT)));

  it("has the task's whole sandbox and limits, property for property", () => {
    const ownToTask = new Set(['Type', 'RemainAfterExit', 'LogExtraFields', 'StandardError', 'CPUAccounting', 'MemoryAccounting']);
    const differ = new Set([...ownToTask, 'IOAccounting', 'TasksAccounting', 'TimeoutStopUSec', 'StateDirectory', 'WorkingDirectory']);
    const expectedOwn = [
      'Description',
      'ExecStart',
      'Environment',
      'StandardInputFile',
      'SyslogIdentifier',
      'PrivateNetwork',
      'ReadWritePaths',
    ];
    for (const [name, variant] of task) {
      if (differ.has(name) || expectedOwn.includes(name)) continue;
      assert.deepEqual(check.get(name), variant, `${name} differs from the task's`);
    }
  });

  it('is a oneshot whose verdicts are successes, bounded in time and in what it writes, with stderr to the reason file', () => {
    assert.deepEqual(check.get('Type')?.value, 'oneshot');
    assert.deepEqual(check.get('RemainAfterExit')?.value, true);
    const [statuses, signals] = check.get('SuccessExitStatus')?.value as [number[], number[]];
    assert.deepEqual([statuses[0], statuses.at(-1), statuses.length, signals], [1, 124, 124, []]);
    assert.equal(check.get('TimeoutStartUSec')?.value, 5_000_000n);
    assert.equal(check.get('LimitFSIZE')?.value, 65_536n);
    assert.equal(check.get('StandardErrorFile')?.value, CHECK_CONTEXT.reasonFile);
    assert.equal(check.get('StandardInputFile')?.value, CHECK_CONTEXT.parametersFile);
    assert.deepEqual(check.get('ExecStart')?.value, [
      ['/usr/lib/tessia/machines/inventory', ['/usr/lib/tessia/machines/inventory', '--check'], false],
    ]);
    assert.deepEqual(check.get('Environment')?.value, ['TESSIA_MACHINE=inventory']);
  });

  it('has no network and nothing writable beyond its /tmp, whatever the machine allows its tasks', () => {
    assert.equal(task.get('PrivateNetwork')?.value, false);
    assert.equal(check.get('PrivateNetwork')?.value, true);
    assert.deepEqual(task.get('ReadWritePaths')?.value, ['/srv/inventory']);
    assert.equal(check.get('ReadWritePaths'), undefined);
    assert.equal(check.get('StateDirectory'), undefined);
  });
});
