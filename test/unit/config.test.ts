import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.js';

/** Asserts that validating `document` fails with a ConfigError whose message has `line`. */
function assertInvalid(document: unknown, ...lines: string[]): ConfigError {
  let caught: unknown;
  assert.throws(
    () => validateConfig(document),
    (error: unknown) => {
      caught = error;
      return true;
    },
  );
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  assert.ok(caught.message.startsWith('config is invalid:\n'), caught.message);
  for (const line of lines) {
    assert.ok(caught.message.split('\n').includes(`  ${line}`), `expected "${line}" in:\n${caught.message}`);
  }
  return caught;
}

const echoMachine = (extra: Record<string, unknown> = {}) => ({ machines: { echo: { builtin: 'echo', ...extra } } });

describe('validateConfig defaults', () => {
  it('fills in every default for an empty document.', () => {
    const config = validateConfig({});
    assert.equal(config.listen, '127.0.0.1:7356');
    assert.equal(config.stateDir, undefined);
    assert.deepEqual(config.log, { level: 'info' });
    assert.deepEqual(config.retention, { maxAgeDays: 30, maxFinished: 10_000, sweepMinutes: 15 });
    assert.equal(config.limits.maxEventStreams, 5000);
    assert.deepEqual(config.tasks, {
      slice: 'tessia-tasks.slice',
      stopWaitSec: 0.5,
      starterSocket: null,
      usageSampleSec: 10,
      filesSocket: null,
    });
    assert.deepEqual(Object.keys(config.machines), ['echo']);
    const echo = config.machines['echo'];
    assert.ok(echo);
    assert.equal(echo.builtin, 'echo');
    assert.equal(echo.exec, undefined);
    assert.deepEqual(echo.limits, {
      runtimeMaxSec: null,
      stopGraceSec: 60,
      memoryMax: null,
      cpuQuotaPercent: null,
      tasksMax: 512,
      maxActive: null,
      checkTimeoutSec: 10,
    });
    assert.deepEqual(echo.sandbox, {
      user: null,
      group: null,
      privateNetwork: false,
      allowLoopback: false,
      allowRoot: false,
      readWritePaths: [],
    });
    // Nobody who shows nothing may do anything over TCP; the Unix socket's mode decides who connects.
    assert.deepEqual(config.auth, { tokens: [], anonymous: 'none', unixSocket: 'write' });
  });

  it("refuses a task as the runner's own user or in its groups, whose rights open the runner's sockets.", () => {
    assert.throws(() => validateConfig(echoMachine({ sandbox: { user: 'tessia-task-runner' } })), /sandbox\.user: the runner's own user/);
    for (const group of ['tessia-task-runner', 'tessia-task-runner-admin']) {
      assert.throws(() => validateConfig(echoMachine({ sandbox: { user: 'nobody', group } })), /sandbox\.group: a group of the runner's/);
    }
  });

  it('refuses a task as root unless allowRoot says so.', () => {
    assert.throws(
      () => validateConfig(echoMachine({ sandbox: { user: 'root' } })),
      /sandbox\.user: root: a task would be root on the host/,
    );
    assert.equal(validateConfig(echoMachine({ sandbox: { user: 'root', allowRoot: true } })).machines['echo']?.sandbox.user, 'root');
    assert.throws(
      () => validateConfig(echoMachine({ sandbox: { user: 'nobody', group: 'root' } })),
      /sandbox\.group: root: a task would have root's group rights/,
    );
  });

  it('refuses an anonymous scope that is not none, read or write.', () => {
    assert.throws(() => validateConfig({ auth: { anonymous: 'admin' } }), /auth\.anonymous/);
  });

  it('treats a null or undefined document (an empty YAML file) like an empty one.', () => {
    assert.deepEqual(validateConfig(null), validateConfig({}));
    assert.deepEqual(validateConfig(undefined), validateConfig({}));
  });

  it('fills in the tasks defaults around a partly given tasks section.', () => {
    assert.deepEqual(validateConfig({ tasks: { stopWaitSec: 2 } }).tasks, {
      slice: 'tessia-tasks.slice',
      stopWaitSec: 2,
      starterSocket: null,
      usageSampleSec: 10,
      filesSocket: null,
    });
    assert.deepEqual(validateConfig({ tasks: { slice: 'mine.slice' } }).tasks, {
      slice: 'mine.slice',
      stopWaitSec: 0.5,
      starterSocket: null,
      usageSampleSec: 10,
      filesSocket: null,
    });
  });

  it('gives a configured machine the default limits and sandbox.', () => {
    const machine = validateConfig({ machines: { mine: { exec: ['/usr/bin/true'] } } }).machines['mine'];
    assert.ok(machine);
    assert.deepEqual(machine.exec, ['/usr/bin/true']);
    assert.equal(machine.builtin, undefined);
    assert.equal(machine.description, '');
    assert.equal(machine.limits.stopGraceSec, 60);
    assert.equal(machine.limits.tasksMax, 512);
    assert.equal(machine.limits.memoryMax, null);
    assert.deepEqual(machine.sandbox.readWritePaths, []);
  });

  it('replaces the default machines when machines are configured.', () => {
    const config = validateConfig({ machines: { other: { builtin: 'echo' } } });
    assert.deepEqual(Object.keys(config.machines), ['other']);
  });

  it('keeps given values instead of the defaults.', () => {
    const config = validateConfig({
      listen: '[::1]:8080',
      stateDir: '/srv/tasks',
      log: { level: 'debug' },
      machines: {
        echo: {
          builtin: 'echo',
          limits: { runtimeMaxSec: 30, stopGraceSec: 5, cpuQuotaPercent: 50, tasksMax: null, maxActive: 3 },
          sandbox: { user: 'nobody', privateNetwork: true, allowLoopback: true, readWritePaths: ['/srv/shared'] },
        },
      },
    });
    assert.equal(config.listen, '[::1]:8080');
    assert.equal(config.stateDir, '/srv/tasks');
    assert.equal(config.log.level, 'debug');
    const echo = config.machines['echo'];
    assert.ok(echo);
    assert.deepEqual(echo.limits, {
      runtimeMaxSec: 30,
      stopGraceSec: 5,
      memoryMax: null,
      cpuQuotaPercent: 50,
      tasksMax: null,
      maxActive: 3,
      checkTimeoutSec: 10,
    });
    assert.deepEqual(echo.sandbox, {
      user: 'nobody',
      group: null,
      privateNetwork: true,
      allowLoopback: true,
      allowRoot: false,
      readWritePaths: ['/srv/shared'],
    });
  });
});

describe('validateConfig memoryMax sizes', () => {
  const sizes: { input: string | number | null; bytes: number | null }[] = [
    { input: '512M', bytes: 536870912 },
    { input: 1024, bytes: 1024 },
    { input: '1024', bytes: 1024 },
    { input: '4K', bytes: 4096 },
    { input: '2G', bytes: 2 * 1024 ** 3 },
    { input: '1T', bytes: 1024 ** 4 },
    { input: ' 8M ', bytes: 8 * 1024 ** 2 },
    { input: null, bytes: null },
  ];
  for (const { input, bytes } of sizes) {
    it(`reads memoryMax ${JSON.stringify(input)} as ${String(bytes)} bytes.`, () => {
      assert.equal(validateConfig(echoMachine({ limits: { memoryMax: input } })).machines['echo']?.limits.memoryMax, bytes);
    });
  }

  const badStrings = ['abc', '512MB', '512m', '1.5G', '-1', '', 'M'];
  for (const input of badStrings) {
    it(`rejects memoryMax ${JSON.stringify(input)} naming machines.echo.limits.memoryMax.`, () => {
      assertInvalid(
        echoMachine({ limits: { memoryMax: input } }),
        `machines.echo.limits.memoryMax: "${input}" is not a size (a number with K, M, G or T)`,
      );
    });
  }

  const badNumbers = [0, -5, 1.5];
  for (const input of badNumbers) {
    it(`rejects the number ${input} as memoryMax under machines.echo.limits.memoryMax.`, () => {
      const error = assertInvalid(echoMachine({ limits: { memoryMax: input } }));
      assert.match(error.message, /^ {2}machines\.echo\.limits\.memoryMax: /m);
    });
  }
});

describe("validateConfig: the runner's names, browser origins, log streams", () => {
  it('allows no other names, no origins and 100 log streams (below the 128 inotify instances a user has on most hosts) by default.', () => {
    const config = validateConfig({});
    assert.deepEqual(config.allowedHosts, []);
    assert.deepEqual(config.allowedOrigins, []);
    assert.equal(config.limits.maxLogStreams, 100);
    assert.equal(validateConfig({ limits: { maxActiveTasks: 5 } }).limits.maxLogStreams, 100);
  });

  it('takes host names and IP addresses, and origins without a path.', () => {
    const config = validateConfig({
      allowedHosts: ['runner1.mesh.example', 'runner1', '10.0.0.5', '[fd00::5]', 'fd00::6', 'runner.example.'],
      allowedOrigins: ['https://console.mesh.example', 'http://localhost:8080'],
    });
    assert.equal(config.allowedHosts.length, 6);
    assert.equal(config.allowedOrigins.length, 2);
  });

  it('refuses a host with a port or a scheme, and an origin with a path or another scheme.', () => {
    assertInvalid({ allowedHosts: ['runner.example:7356'] }, 'allowedHosts.0: must be a host name or an IP address (no port)');
    assertInvalid({ allowedHosts: ['http://runner.example'] }, 'allowedHosts.0: must be a host name or an IP address (no port)');
    assertInvalid(
      { allowedOrigins: ['https://console.example/app'] },
      'allowedOrigins.0: must be an origin: http(s)://host[:port], without a path',
    );
    assertInvalid({ allowedOrigins: ['console.example'] }, 'allowedOrigins.0: must be an origin: http(s)://host[:port], without a path');
    assertInvalid({ allowedOrigins: ['null'] }, 'allowedOrigins.0: must be an origin: http(s)://host[:port], without a path');
    assertInvalid({ limits: { maxLogStreams: 0 } }, 'limits.maxLogStreams: Too small: expected number to be >=1');
  });
});

describe('validateConfig errors', () => {
  it('names an unknown top-level key as (top level).', () => {
    assertInvalid({ bogus: 1 }, '(top level): unknown key(s) "bogus"');
  });

  it('names the machine for an unknown key inside a machine.', () => {
    assertInvalid(echoMachine({ bogus: true }), 'machines.echo: unknown key(s) "bogus"');
  });

  it('names the section for an unknown key inside limits.', () => {
    assertInvalid(echoMachine({ limits: { memory: '1G' } }), 'machines.echo.limits: unknown key(s) "memory"');
  });

  it('rejects a machine with both builtin and exec.', () => {
    assertInvalid(
      { machines: { echo: { builtin: 'echo', exec: ['/bin/true'] } } },
      'machines.echo: needs exactly one of "builtin", "exec" or "tessia"',
    );
  });

  it('rejects a machine with neither builtin nor exec.', () => {
    assertInvalid(
      { machines: { echo: { description: 'nothing to run' } } },
      'machines.echo: needs exactly one of "builtin", "exec" or "tessia"',
    );
  });

  it('rejects a relative exec program naming machines.NAME.exec.0.', () => {
    assertInvalid({ machines: { tool: { exec: ['bin/tool', '--flag'] } } }, 'machines.tool.exec.0: must be an absolute path');
  });

  it('reads a tessia machine as the issue writes it, with the system python3 by default.', () => {
    const config = validateConfig({
      machines: {
        powerman: { tessia: { class: 'task_runner.machines.powerman.machine:PowerManagerMachine', pythonPath: ['/opt/tessia-mesh/src'] } },
      },
    });
    assert.deepEqual(config.machines['powerman']?.tessia, {
      class: 'task_runner.machines.powerman.machine:PowerManagerMachine',
      pythonPath: ['/opt/tessia-mesh/src'],
      python: '/usr/bin/python3',
    });
  });

  it('rejects a tessia class that is not module:Class, a relative python path and a relative interpreter.', () => {
    assertInvalid(
      { machines: { p: { tessia: { class: 'task_runner.machines.powerman' } } } },
      'machines.p.tessia.class: must be module.path:ClassName',
    );
    assertInvalid({ machines: { p: { tessia: { class: 'os:system; rm' } } } }, 'machines.p.tessia.class: must be module.path:ClassName');
    assertInvalid(
      { machines: { p: { tessia: { class: 'a:B', pythonPath: ['src'] } } } },
      'machines.p.tessia.pythonPath.0: must be an absolute path',
    );
    assertInvalid(
      { machines: { p: { tessia: { class: 'a:B', python: 'python3' } } } },
      'machines.p.tessia.python: must be an absolute path',
    );
  });

  it('rejects a machine that is both exec and tessia.', () => {
    assertInvalid(
      { machines: { p: { exec: ['/bin/true'], tessia: { class: 'a:B' } } } },
      'machines.p: needs exactly one of "builtin", "exec" or "tessia"',
    );
  });

  it('takes a check beside exec only, with an absolute program.', () => {
    const ONLY_WITH_EXEC = 'only with "exec" (the built-in echo checks its scripts itself; a tessia machine calls its class\'s validate)';
    const config = validateConfig({ machines: { tool: { exec: ['/usr/bin/tool'], check: ['/usr/bin/tool', '--check'] } } });
    assert.deepEqual(config.machines['tool']?.check, ['/usr/bin/tool', '--check']);
    assertInvalid(
      { machines: { tool: { exec: ['/usr/bin/tool'], check: ['tool-check'] } } },
      'machines.tool.check.0: must be an absolute path',
    );
    assertInvalid({ machines: { e: { builtin: 'echo', check: ['/bin/true'] } } }, `machines.e.check: ${ONLY_WITH_EXEC}`);
    assertInvalid({ machines: { p: { tessia: { class: 'a:B' }, check: ['/bin/true'] } } }, `machines.p.check: ${ONLY_WITH_EXEC}`);
  });

  it('rejects an empty exec list.', () => {
    const error = assertInvalid({ machines: { tool: { exec: [] } } });
    assert.match(error.message, /^ {2}machines\.tool\.exec: /m);
  });

  it('rejects an unknown builtin machine.', () => {
    const error = assertInvalid({ machines: { tool: { builtin: 'ansible' } } });
    assert.match(error.message, /^ {2}machines\.tool\.builtin: /m);
  });

  const badNames = ['Echo', '1echo', 'my.machine', 'a'.repeat(33), ''];
  for (const name of badNames) {
    it(`rejects the machine name ${JSON.stringify(name)} naming machines.${name}.`, () => {
      const error = assertInvalid({ machines: { [name]: { builtin: 'echo' } } });
      assert.ok(error.message.includes(`  machines.${name}: `), error.message);
    });
  }

  it('accepts machine names of lowercase letters, digits, _ and - up to 32 characters.', () => {
    const names = ['e', 'echo-2', 'my_machine', 'a'.repeat(32)];
    const config = validateConfig({ machines: Object.fromEntries(names.map((name) => [name, { builtin: 'echo' }])) });
    assert.deepEqual(Object.keys(config.machines), names);
  });

  const badListens = ['nonsense', '127.0.0.1', ':7356', '127.0.0.1:', '127.0.0.1:123456', 'host name:80'];
  for (const listen of badListens) {
    it(`rejects listen ${JSON.stringify(listen)} as not HOST:PORT.`, () => {
      assertInvalid({ listen }, 'listen: must be HOST:PORT');
    });
  }

  it('rejects a listen port above 65535.', () => {
    assertInvalid({ listen: '127.0.0.1:65536' }, 'listen: port must be between 0 and 65535');
  });

  const goodListens = ['0.0.0.0:0', 'localhost:65535', '[::]:7356', '[::1]:80', 'runner.example.com:443'];
  for (const listen of goodListens) {
    it(`accepts listen ${JSON.stringify(listen)}.`, () => {
      assert.equal(validateConfig({ listen }).listen, listen);
    });
  }

  const badSlices = ['tessia-tasks', 'tessia-tasks.service', 'my slice.slice', '.slice/../x.slice'];
  for (const slice of badSlices) {
    it(`rejects the slice name ${JSON.stringify(slice)} naming tasks.slice.`, () => {
      assertInvalid({ tasks: { slice } }, 'tasks.slice: must be a slice unit name');
    });
  }

  it('rejects a relative stateDir.', () => {
    assertInvalid({ stateDir: 'var/lib/tasks' }, 'stateDir: must be an absolute path');
  });

  it('rejects a relative readWritePaths entry naming its index.', () => {
    assertInvalid(
      echoMachine({ sandbox: { readWritePaths: ['/ok', 'relative'] } }),
      'machines.echo.sandbox.readWritePaths.1: must be an absolute path',
    );
  });

  it('rejects a sandbox user that is not a system user name.', () => {
    assertInvalid(echoMachine({ sandbox: { user: 'Root User' } }), 'machines.echo.sandbox.user: must be a system user or group name');
  });

  it('lists every problem of a document, one per line.', () => {
    const error = assertInvalid(
      { listen: '127.0.0.1:65536', tasks: { slice: 'x' }, extra: 1 },
      'listen: port must be between 0 and 65535',
      'tasks.slice: must be a slice unit name',
      '(top level): unknown key(s) "extra"',
    );
    assert.equal(error.message.split('\n').length, 4);
  });
});

describe('loadConfig', () => {
  let directory = '';

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'tessia-config-test-'));
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('returns the defaults when no path is given.', async () => {
    assert.deepEqual(await loadConfig(undefined), validateConfig({}));
  });

  it('reads and validates a YAML file.', async () => {
    const path = join(directory, 'good.yaml');
    await writeFile(
      path,
      [
        'listen: 0.0.0.0:8000',
        'tasks:',
        '  slice: custom.slice',
        'machines:',
        '  echo:',
        '    builtin: echo',
        '    limits:',
        '      memoryMax: 512M',
        '  tool:',
        '    exec: [/usr/bin/tool, --verbose]',
        '',
      ].join('\n'),
    );
    const config = await loadConfig(path);
    assert.equal(config.listen, '0.0.0.0:8000');
    assert.deepEqual(config.tasks, { slice: 'custom.slice', stopWaitSec: 0.5, starterSocket: null, usageSampleSec: 10, filesSocket: null });
    assert.equal(config.machines['echo']?.limits.memoryMax, 536870912);
    assert.deepEqual(config.machines['tool']?.exec, ['/usr/bin/tool', '--verbose']);
  });

  it('gives the defaults for an empty YAML file.', async () => {
    const path = join(directory, 'empty.yaml');
    await writeFile(path, '');
    assert.deepEqual(await loadConfig(path), validateConfig({}));
  });

  it('names the file, not "config", when the YAML document is invalid.', async () => {
    const path = join(directory, 'invalid-values.yaml');
    await writeFile(path, 'machines:\n  echo:\n    builtin: echo\n    limits:\n      memoryMax: abc\n');
    await assert.rejects(loadConfig(path), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.startsWith(`${path} is invalid:\n`), error.message);
      assert.ok(error.message.includes('  machines.echo.limits.memoryMax: "abc" is not a size'), error.message);
      return true;
    });
  });

  it('reports invalid YAML as a ConfigError naming the file.', async () => {
    const path = join(directory, 'broken.yaml');
    await writeFile(path, 'listen: [unclosed\nmachines: {\n');
    await assert.rejects(loadConfig(path), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.name, 'ConfigError');
      assert.ok(error.message.startsWith(`${path} is not valid YAML: `), error.message);
      assert.ok(error.cause instanceof Error);
      return true;
    });
  });

  it('reports a missing file as a ConfigError naming the file.', async () => {
    const path = join(directory, 'does-not-exist.yaml');
    await assert.rejects(loadConfig(path), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.startsWith(`cannot read ${path}: `), error.message);
      assert.match(error.message, /ENOENT/);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  });

  it('reports a directory given as the config file as a ConfigError naming it.', async () => {
    await assert.rejects(loadConfig(directory), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.startsWith(`cannot read ${directory}: `), error.message);
      return true;
    });
  });

  it('reports a file without read permission as a ConfigError naming it.', async (context) => {
    if (process.getuid?.() === 0) {
      context.skip('root can read files without read permission');
      return;
    }
    const path = join(directory, 'unreadable.yaml');
    await writeFile(path, 'listen: 127.0.0.1:1\n');
    await chmod(path, 0o000);
    await assert.rejects(loadConfig(path), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.message.startsWith(`cannot read ${path}: `), error.message);
      assert.match(error.message, /EACCES/);
      return true;
    });
  });
});

describe("the limits of a task's files", () => {
  it('default to 10 000 entries, 16 levels and 1 GiB, take sizes with suffixes, and refuse what is beyond the ceilings.', () => {
    const { limits } = validateConfig({});
    assert.deepEqual([limits.maxFileEntries, limits.maxFileDepth, limits.maxFileBytes], [10_000, 16, 1024 ** 3]);
    assert.equal(validateConfig({ limits: { maxFileBytes: '64M' } }).limits.maxFileBytes, 64 * 1024 ** 2);
    for (const limits of [{ maxFileEntries: 0 }, { maxFileEntries: 100_001 }, { maxFileDepth: 257 }, { maxFileBytes: '2048T' }]) {
      assert.throws(() => validateConfig({ limits }), new RegExp(`limits\\.${Object.keys(limits)[0]}`), JSON.stringify(limits));
    }
  });
});
