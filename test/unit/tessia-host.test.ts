/**
 * The tessia host (src/machines/tessia/host.py) run as the runner runs it, outside systemd: Debian's
 * python3, the parameters in a file as stdin, TESSIA_MACHINE and TESSIA_TASK_ID set. The stdout
 * transport runs in a virtualenv without system site packages (no python3-systemd, as an admin's
 * per-machine venv); the journal transport runs in a mount namespace whose
 * /run/systemd/journal/socket is a datagram socket of the test's, so what python3-systemd and
 * libsystemd really send is what the test reads.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  SYSTEM_PYTHON,
  missingPythonModules,
  mountNamespaceOptions,
  skipUnlessMountNamespace,
  skipUnlessPython,
} from '../harness/requirements.js';
import { parseDatagram } from '../harness/journal-datagram.js';

const HOST = fileURLToPath(new URL('../../src/machines/tessia/host.py', import.meta.url));
const MESH = fileURLToPath(new URL('../fixtures/tessia-mesh/src', import.meta.url));
const PROBES_DIR = fileURLToPath(new URL('../fixtures/python-machines', import.meta.url));
const PROBES_FILE = join(PROBES_DIR, 'host_probes.py');
const RECEIVER = fileURLToPath(new URL('../fixtures/datagram-receiver.py', import.meta.url));
const ECHO = 'task_runner.machines.echo.machine:EchoMachine';
const POWERMAN = 'task_runner.machines.powerman.machine:PowerManagerMachine';
const TASK_ID = '0123abcd';
const LIMIT = { timeout: 30_000 };
const STOP_LINE = 'Stop requested: the machine may clean up';

interface HostRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout's lines, without the last newline. */
  lines: string[];
}

interface HostOptions {
  mode?: 'run' | 'check';
  machineClass: string;
  parameters?: unknown;
  /** Sent as the parameters file's bytes instead of `parameters` as JSON. */
  rawParameters?: string;
  python?: string;
  /** Extra environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Run in a mount namespace whose /run/systemd/journal is this directory. */
  journalDirectory?: string;
  /** Called with each stdout line as it comes, with the host's process (to signal it). */
  onLine?: (line: string, host: ChildProcess) => void;
  /** Read the parameters file to its end before the host gets it, as a machine reading stdin would. */
  consumeStdin?: boolean;
  onSpawn?: (host: ChildProcess) => void;
}

let workDirectory: string;
let fileCount = 0;

function runHost(options: HostOptions): Promise<HostRun> {
  const file = join(workDirectory, `parameters-${++fileCount}.json`);
  writeFileSync(file, options.rawParameters ?? JSON.stringify(options.parameters ?? null));
  const stdin = openSync(file, 'r');
  if (options.consumeStdin) readSync(stdin, Buffer.alloc(1 << 16));
  const mode = options.mode ?? 'run';
  const paths = ['--path', MESH, '--path', PROBES_DIR];
  const hostArgv = [options.python ?? SYSTEM_PYTHON, '-I', '-B', HOST, mode, '--class', options.machineClass, ...paths];
  const argv = options.journalDirectory === undefined ? hostArgv : inMountNamespace(options.journalDirectory, hostArgv);
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TESSIA_MACHINE: 'probe' };
  if (mode === 'run') env['TESSIA_TASK_ID'] = TASK_ID;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) Reflect.deleteProperty(env, name);
    else env[name] = value;
  }
  const [command = '', ...args] = argv;
  const host = spawn(command, args, { cwd: workDirectory, env, stdio: [stdin, 'pipe', 'pipe'] });
  closeSync(stdin);
  options.onSpawn?.(host);
  // A host that does not end is the defect: kill it (by its own pid) so the test reports it.
  const kill = setTimeout(() => host.kill('SIGKILL'), 20_000);
  let stdout = '';
  let stderr = '';
  const { stdout: output, stderr: errors } = host;
  if (output === null || errors === null) throw new Error('spawned with pipes');
  errors.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const reader = createInterface({ input: output });
  reader.on('line', (line) => {
    stdout += `${line}\n`;
    options.onLine?.(line, host);
  });
  return new Promise((resolve) => {
    host.once('close', (status, signal) => {
      clearTimeout(kill);
      resolve({ status, signal, stdout, stderr, lines: stdout.split('\n').slice(0, -1) });
    });
  });
}

/** `argv` with /run a tmpfs and the test's directory as /run/systemd/journal, in a mount namespace of its own. */
function inMountNamespace(journalDirectory: string, argv: string[]): string[] {
  const setup = 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && mount --bind "$0" /run/systemd/journal && exec "$@"';
  return ['unshare', ...mountNamespaceOptions(), '--propagation', 'private', 'sh', '-c', setup, journalDirectory, ...argv];
}

/** The line in the probes' source that a record's CODE_LINE names. */
function probeSourceLine(line: string | undefined): string {
  return readFileSync(PROBES_FILE, 'utf8').split('\n')[Number(line) - 1] ?? '';
}

before(() => {
  workDirectory = mkdtempSync(join(tmpdir(), 'tessia-host-'));
});
after(() => {
  rmSync(workDirectory, { recursive: true, force: true });
});

describe('the tessia host file', () => {
  it('is a plain module run by `python -I -B`: not executable (git keeps it 100644), no #! line', () => {
    assert.equal(statSync(HOST).mode & 0o111, 0);
    assert.ok(!readFileSync(HOST, 'utf8').startsWith('#!'));
  });
});

const needsJsonschema =
  "the tessia host tests run tessia-mesh's EchoMachine, which needs python3-jsonschema: apt-get install python3-jsonschema";

describe('the tessia host on stdout (a venv without python3-systemd)', { skip: skipUnlessPython(['jsonschema'], needsJsonschema) }, () => {
  let venvPython: string;

  before(() => {
    const venv = join(workDirectory, 'venv');
    const created = spawnSync(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', venv], { encoding: 'utf8' });
    assert.equal(created.status, 0, created.stderr);
    venvPython = join(venv, 'bin', 'python');
    installJsonschemaInto(venvPython);
    assert.deepEqual(
      missingPythonModules(['jsonschema', 'systemd'], venvPython),
      ['systemd'],
      'the venv has jsonschema, not python3-systemd',
    );
  });

  const run = (options: HostOptions) => runHost({ python: venvPython, ...options });

  it('writes print lines at <6> and each LOG level at its priority, EchoMachine as it is', LIMIT, async () => {
    const script = ['echo hello', 'log critical c', 'log error e', 'log warning w', 'log info i', 'log debug d', 'echo <3>not a priority'];
    const ran = await run({ machineClass: ECHO, parameters: script });
    assert.equal(ran.status, 0, ran.stdout);
    assert.deepEqual(ran.lines, ['<6>Echo machine started', '<6>hello', '<2>c', '<3>e', '<4>w', '<6>i', '<7>d', '<6><3>not a priority']);
    assert.equal(ran.stderr, '');
  });

  it(
    'maps custom levels down, prefixes every line of a record and of a logged traceback, and writes sys.stderr at <3>',
    LIMIT,
    async () => {
      const ran = await run({ machineClass: 'host_probes:Logs' });
      assert.equal(ran.status, 0, ran.stdout);
      assert.deepEqual(ran.lines, [
        '<7>debug record',
        '<6>info record with an argument',
        '<6>a custom level between INFO and WARNING',
        '<4>warning record',
        '<3>error record',
        '<2>critical record',
        '<2>above CRITICAL',
        // level 5 is below the root logger's DEBUG, as in the original runner: not written
        '<6>first line',
        '<6>second line',
        '<3>lookup failed',
        '<3>Traceback (most recent call last):',
        ...ran.lines.slice(11, -4),
        "<3>KeyError: 'missing'",
        '<6><3>printed, not a priority',
        '<3>to stderr',
        '<6>no newline yet',
      ]);
      assert.ok(ran.lines.slice(11, -4).length >= 2, 'the traceback names the frame');
      assert.ok(ran.lines.slice(11, -4).every((line) => line.startsWith('<3>')));
    },
  );

  it('logs an uncaught exception as error lines with its traceback, then dies by SIGABRT', LIMIT, async () => {
    const ran = await run({ machineClass: ECHO, parameters: ['echo before', 'raise', 'echo after'] });
    assert.equal(ran.signal, 'SIGABRT');
    assert.deepEqual(ran.lines.slice(0, 4), [
      '<6>Echo machine started',
      '<6>before',
      `<3>run() of ${ECHO} raised RuntimeError`,
      '<3>Traceback (most recent call last):',
    ]);
    assert.equal(ran.lines.at(-1), '<3>RuntimeError');
    assert.ok(ran.lines.slice(2).every((line) => line.startsWith('<3>')));
    assert.ok(!ran.stdout.includes('host.py'), "the host's own frames are left out");
    assert.ok(ran.stdout.includes('echo/machine.py'));
  });

  it("ignores run()'s return value as the original did: RETURN 5 exits 0", LIMIT, async () => {
    const ran = await run({ machineClass: ECHO, parameters: ['echo a', 'return 5', 'echo b'] });
    assert.equal(ran.status, 0);
    assert.deepEqual(ran.lines, ['<6>Echo machine started', '<6>a']);
  });

  it('hands run() a task with exactly .machine and .parameters, read from stdin at offset 0 even when already read', LIMIT, async () => {
    const ran = await run({ machineClass: 'host_probes:ShowsTaskAndReturns', parameters: { a: [1, 'é'] }, consumeStdin: true });
    assert.equal(ran.status, 0, ran.stdout);
    assert.deepEqual(ran.lines, ["<6>attributes ['machine', 'parameters']", '<6>machine probe', "<6>parameters {'a': [1, 'é']}"]);
  });

  it('exits with SystemExit(n) for n in 0..255, and 1 with an error line otherwise', LIMIT, async () => {
    assert.equal((await run({ machineClass: 'host_probes:Exits', parameters: { exit: 3 } })).status, 3);
    assert.equal((await run({ machineClass: 'host_probes:Exits', parameters: { exit: null } })).status, 0);
    const text = await run({ machineClass: 'host_probes:Exits', parameters: { exit: 'giving up' } });
    assert.deepEqual([text.status, text.lines], [1, ['<3>giving up']]);
    const large = await run({ machineClass: 'host_probes:Exits', parameters: { exit: 300 } });
    assert.deepEqual([large.status, large.lines], [1, ['<3>run() ended with SystemExit(300): an exit status is 0..255']]);
  });

  it(
    'on SIGTERM raises a stop that `except Exception` does not catch, runs the finally block to its end through a second SIGTERM, exits 143',
    LIMIT,
    async () => {
      const ran = await run({
        machineClass: 'host_probes:CleansUpOnStop',
        parameters: { cleanupSeconds: 1 },
        onLine: (line, host) => {
          if (line === '<6>started' || line === '<6>cleanup started') host.kill('SIGTERM');
        },
      });
      assert.deepEqual([ran.status, ran.signal], [143, null]);
      assert.deepEqual(ran.lines, ['<6>started', `<6>${STOP_LINE}`, '<6>cleanup started', '<6>cleanup done']);
    },
  );

  it('stops EchoMachine in a SLEEP with the stop line and 143 (the original has no cleanup section)', LIMIT, async () => {
    const ran = await run({
      machineClass: ECHO,
      parameters: ['echo a', 'sleep 30', 'echo b'],
      onLine: (line, host) => line === '<6>a' && host.kill('SIGTERM'),
    });
    assert.equal(ran.status, 143);
    assert.deepEqual(ran.lines, ['<6>Echo machine started', '<6>a', `<6>${STOP_LINE}`]);
  });

  it(
    "exits once run() returns, a non-daemon thread still running, and logs a thread's uncaught exception as error lines",
    LIMIT,
    async () => {
      const started = Date.now();
      const ran = await run({ machineClass: 'host_probes:LeavesAThreadRunning' });
      assert.deepEqual([ran.status, ran.signal], [0, null]);
      assert.ok(Date.now() - started < 10_000);
      assert.deepEqual(ran.lines.slice(0, 2), ['<6>from a thread', '<3>Exception in thread fails:']);
      assert.deepEqual(ran.lines.slice(-2), ['<3>ValueError: thread failed', '<6>returning']);
      assert.ok(ran.lines.slice(1, -1).every((line) => line.startsWith('<3>')));
    },
  );

  it(
    "writes a line longer than journald's LineMax in pieces of at most 32 KiB, each with its prefix, cut between characters",
    LIMIT,
    async () => {
      const ran = await run({ machineClass: 'host_probes:PrintsLongLines' });
      assert.equal(ran.status, 0);
      assert.ok(ran.lines.length >= 6, `${ran.lines.length} lines`);
      assert.ok(ran.lines.every((line) => line.startsWith('<6>') && Buffer.byteLength(line) <= 3 + 32 * 1024));
      const text = ran.lines.map((line) => line.slice(3)).join('');
      assert.equal(text, 'x'.repeat(70_000) + 'é'.repeat(40_000));
    },
  );

  it('treats a NUL as the end of a line, as journald does: the text after it keeps the prefix', LIMIT, async () => {
    const ran = await run({ machineClass: 'host_probes:PrintsNul' });
    assert.equal(ran.status, 0);
    assert.deepEqual(ran.lines, ['<6>hello', '<6><0>forged emergency']);
  });

  it('logs a class that cannot be loaded, naming the module and the exception, and dies by SIGABRT', LIMIT, async () => {
    const ran = await run({ machineClass: POWERMAN, parameters: {}, env: { TESSIA_MACHINE: 'powerman' } });
    assert.equal(ran.signal, 'SIGABRT');
    assert.equal(ran.lines[0], `<3>cannot load machine class ${POWERMAN}: ModuleNotFoundError: No module named 'zhmcclient'`);
    assert.ok(ran.lines.includes('<3>    import zhmcclient'), 'the traceback shows which module imports it');
    assert.ok(ran.lines.every((line) => line.startsWith('<3>')));
  });

  it('refuses an environment the runner does not build: no task id', LIMIT, async () => {
    const ran = await run({ machineClass: 'host_probes:WithoutValidate', env: { TESSIA_TASK_ID: undefined } });
    assert.equal(ran.signal, 'SIGABRT');
    assert.deepEqual(ran.lines, ['<3>$TESSIA_TASK_ID is not set']);
  });
});

const skipJournal =
  skipUnlessPython(
    ['jsonschema', 'systemd'],
    "the tessia host's journal transport tests need python3-systemd and python3-jsonschema: apt-get install python3-systemd python3-jsonschema",
  ) ||
  skipUnlessMountNamespace(
    "the tessia host's journal transport tests run the host in a mount namespace: run them as root, or allow unprivileged user namespaces",
  );

describe('the tessia host on the native journal (python3-systemd)', { skip: skipJournal }, () => {
  const identity = { SYSLOG_IDENTIFIER: 'tessia-probe', TESSIA_TASK_ID: TASK_ID, TESSIA_MACHINE: 'probe' };
  const receivers: ChildProcess[] = [];
  after(() => {
    for (const receiver of receivers) receiver.kill();
  });

  /** A directory holding `socket`, a datagram socket that keeps what it receives until asked. */
  async function journalDirectory(): Promise<{ directory: string; read: (count: number) => Promise<Record<string, string>[]> }> {
    const directory = join(workDirectory, `journal-${++fileCount}`);
    mkdirSync(directory);
    const receiver = spawn(SYSTEM_PYTHON, [RECEIVER, join(directory, 'socket')], { stdio: ['pipe', 'pipe', 'inherit'] });
    receivers.push(receiver);
    const lines = createInterface({ input: receiver.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const line = await lines.next();
      if (line.done) throw new Error('the receiver ended');
      return line.value;
    };
    assert.equal(await next(), 'ready');
    const read = async (count: number) => {
      receiver.stdin.write(`read ${count} 1\n`);
      const entries: Record<string, string>[] = [];
      for (let line = await next(); line !== 'end'; line = await next()) {
        if (line !== 'timeout') entries.push(parseDatagram(Buffer.from(line, 'base64')));
      }
      return entries;
    };
    return { directory, read };
  }

  it('sends each record, print and stderr line as one entry with exactly its fields: no lowercase fields', LIMIT, async () => {
    const journal = await journalDirectory();
    const ran = await runHost({ machineClass: 'host_probes:Logs', journalDirectory: journal.directory });
    assert.equal(ran.status, 0, ran.stdout);
    assert.equal(ran.stdout, '', 'nothing on the stream');
    const entries = await journal.read(20);
    const record = (MESSAGE: string, PRIORITY: number, TESSIA_LOG_LEVEL: string) => ({
      MESSAGE,
      PRIORITY: String(PRIORITY),
      LOGGER: 'probe',
      CODE_MODULE: 'host_probes',
      CODE_FUNC: 'run',
      CODE_FILE: PROBES_FILE,
      TESSIA_LOG_LEVEL,
      ...identity,
    });
    const line = (MESSAGE: string, PRIORITY: number) => ({ MESSAGE, PRIORITY: String(PRIORITY), ...identity });
    const records = entries.slice(0, 9);
    assert.equal(entries.length, 12);
    assert.deepEqual(
      records.map(({ CODE_LINE: _, ...fields }) => fields),
      [
        record('debug record', 7, 'DEBUG'),
        record('info record with an argument', 6, 'INFO'),
        record('a custom level between INFO and WARNING', 6, 'NOTICE'),
        record('warning record', 4, 'WARNING'),
        record('error record', 3, 'ERROR'),
        record('critical record', 2, 'CRITICAL'),
        record('above CRITICAL', 2, 'Level 60'),
        record('first line\nsecond line', 6, 'INFO'),
        record(records[8]?.['MESSAGE'] ?? '', 3, 'ERROR'),
      ],
    );
    for (const [index, call] of [
      'log.debug',
      'log.info',
      'log.log(25',
      'log.warning',
      'log.error',
      'log.critical',
      'log.log(60',
      'log.info',
      'log.exception',
    ].entries()) {
      assert.ok(probeSourceLine(records[index]?.['CODE_LINE']).includes(call), `CODE_LINE of entry ${index}`);
    }
    const traceback = records[8]?.['MESSAGE'] ?? '';
    assert.match(
      traceback,
      /^lookup failed\nTraceback \(most recent call last\):\n {2}File ".*host_probes\.py", line \d+, in run\n[\s\S]*\nKeyError: 'missing'$/,
    );
    assert.deepEqual(entries.slice(9), [line('<3>printed, not a priority', 6), line('to stderr', 3), line('no newline yet', 6)]);
  });

  it("sends EchoMachine's entries, then its exception as one error entry, before SIGABRT", LIMIT, async () => {
    const journal = await journalDirectory();
    const ran = await runHost({
      machineClass: ECHO,
      parameters: ['echo a', 'log warning w', 'raise'],
      journalDirectory: journal.directory,
    });
    assert.equal(ran.signal, 'SIGABRT');
    const entries = await journal.read(10);
    assert.deepEqual(
      entries.map((fields) => [fields['MESSAGE']?.split('\n')[0], fields['PRIORITY'], fields['LOGGER']]),
      [
        ['Echo machine started', '6', 'sample-task'],
        ['a', '6', undefined],
        ['w', '4', 'sample-task'],
        [`run() of ${ECHO} raised RuntimeError`, '3', undefined],
      ],
    );
    const failure = entries[3] ?? {};
    assert.deepEqual(Object.keys(failure).sort(), ['MESSAGE', 'PRIORITY', 'SYSLOG_IDENTIFIER', 'TESSIA_MACHINE', 'TESSIA_TASK_ID']);
    assert.match(failure['MESSAGE'] ?? '', /\nTraceback \(most recent call last\):\n[\s\S]*\nRuntimeError$/);
  });

  it('sends the stop line as an entry of its own, between the entries of the machine', LIMIT, async () => {
    const journal = await journalDirectory();
    let host: ChildProcess | undefined;
    const running = runHost({
      machineClass: 'host_probes:CleansUpOnStop',
      parameters: {},
      journalDirectory: journal.directory,
      onSpawn: (spawned) => (host = spawned),
    });
    assert.deepEqual(await journal.read(1), [{ MESSAGE: 'started', PRIORITY: '6', ...identity }]);
    host?.kill('SIGTERM');
    assert.equal((await running).status, 143);
    const entries = await journal.read(5);
    assert.deepEqual(
      entries.map((fields) => fields['MESSAGE']),
      [STOP_LINE, 'cleanup started', 'cleanup done'],
    );
    assert.deepEqual(entries[0], { MESSAGE: STOP_LINE, PRIORITY: '6', ...identity });
  });

  it("writes to the stream instead when journald's socket is missing", LIMIT, async () => {
    const directory = join(workDirectory, `no-journal-${++fileCount}`);
    mkdirSync(directory);
    const ran = await runHost({ machineClass: ECHO, parameters: ['echo a', 'log error e'], journalDirectory: directory });
    assert.equal(ran.status, 0);
    assert.deepEqual(ran.lines, ['<6>Echo machine started', '<6>a', '<3>e']);
  });

  it('writes an entry journald refuses (its socket there, nobody reading it) to the stream instead', LIMIT, async () => {
    const directory = join(workDirectory, `dead-journal-${++fileCount}`);
    mkdirSync(directory);
    const bound = spawnSync(SYSTEM_PYTHON, [
      '-c',
      'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind(sys.argv[1])',
      join(directory, 'socket'),
    ]);
    assert.equal(bound.status, 0);
    const ran = await runHost({ machineClass: ECHO, parameters: ['echo a', 'log error e'], journalDirectory: directory });
    assert.equal(ran.status, 0);
    assert.deepEqual(ran.lines, ['<6>Echo machine started', '<6>a', '<3>e']);
  });
});

describe('the tessia host checking parameters', { skip: skipUnlessPython(['jsonschema'], needsJsonschema) }, () => {
  const check = (options: HostOptions) => runHost({ mode: 'check', ...options });

  it("answers 0 and writes nothing to stderr for parameters EchoMachine's validate accepts", LIMIT, async () => {
    const ran = await check({ machineClass: ECHO, parameters: ['echo a', 'sleep 1', 'log info i'] });
    assert.deepEqual([ran.status, ran.stderr, ran.stdout], [0, '', '']);
  });

  it("answers 1 with validate's exception as the one line on stderr", LIMIT, async () => {
    const ran = await check({ machineClass: ECHO, parameters: ['echo a', 'bogus command'] });
    assert.deepEqual([ran.status, ran.stderr], [1, 'SyntaxError: Invalid command bogus (EchoMachine, line 2)\n']);
    assert.equal(ran.stdout, '', 'no traceback in the journal: exceptions may quote the parameters');
  });

  it('answers 125 naming the missing module for a class that cannot be loaded, its traceback in the journal', LIMIT, async () => {
    const ran = await check({ machineClass: POWERMAN, parameters: { targets: [] }, env: { TESSIA_MACHINE: 'powerman' } });
    assert.equal(ran.status, 125);
    assert.equal(ran.stderr, `cannot load machine class ${POWERMAN}: ModuleNotFoundError: No module named 'zhmcclient'\n`);
    assert.ok(ran.lines.includes('<3>    import zhmcclient'));
  });

  it('answers 0 for a class without validate', LIMIT, async () => {
    const ran = await check({ machineClass: 'host_probes:WithoutValidate' });
    assert.deepEqual([ran.status, ran.stderr], [0, '']);
  });

  it("keeps validate's prints, stderr writes and records off stderr: they go to stdout with their priorities", LIMIT, async () => {
    const ran = await check({ machineClass: 'host_probes:ValidatesNoisily', parameters: {} });
    assert.deepEqual([ran.status, ran.stderr], [0, '']);
    assert.deepEqual(ran.lines, ['<6>printed by validate', '<3>written to stderr by validate', '<4>logged by validate']);
  });

  it('makes the reason one line of at most 500 characters: the first line of the message, or just the type', LIMIT, async () => {
    const multiline = await check({ machineClass: 'host_probes:ValidatesNoisily', parameters: { reject: '\nfirst\tline\nsecond line' } });
    assert.deepEqual([multiline.status, multiline.stderr], [1, 'ValueError: first line\n']);
    const long = await check({ machineClass: 'host_probes:ValidatesNoisily', parameters: { reject: 'y'.repeat(2000) } });
    assert.equal(long.status, 1);
    assert.equal(long.stderr.trimEnd().length, 500, 'every character here is one UTF-16 unit');
    assert.match(long.stderr, /^ValueError: y+…\n$/);
    const empty = await check({ machineClass: 'host_probes:ValidatesNoisily', parameters: { reject: ' ' } });
    assert.deepEqual([empty.status, empty.stderr], [1, 'ValueError\n']);
  });

  it(
    'answers 125 when validate ends with SystemExit, when the class has no run(), or when the parameters are not JSON',
    LIMIT,
    async () => {
      const exits = await check({ machineClass: 'host_probes:ValidateExits' });
      assert.deepEqual([exits.status, exits.stderr], [125, 'validate() ended with SystemExit\n']);
      const noRun = await check({ machineClass: 'host_probes:NoRun' });
      assert.deepEqual([noRun.status, noRun.stderr], [125, 'cannot load machine class host_probes:NoRun: it has no callable run()\n']);
      const garbage = await check({ machineClass: ECHO, rawParameters: '["echo a"' });
      assert.equal(garbage.status, 125);
      assert.match(garbage.stderr, /^cannot read the parameters: JSONDecodeError: [^\n]+\n$/);
      assert.ok(!garbage.stderr.includes('echo a'));
    },
  );

  it('answers 125 to a command line the runner does not build', LIMIT, async () => {
    const ran = await check({ machineClass: 'not a class' });
    assert.deepEqual([ran.status, ran.stderr], [125, "--class 'not a class' is not MODULE:CLASS\n"]);
  });
});

describe('skipUnlessPython', () => {
  it('skips with the reason when a module is missing, and throws instead under TESSIA_REQUIRE_ALL_SUITES=1', () => {
    assert.equal(skipUnlessPython(['json'], 'needs json', {}), false);
    assert.equal(skipUnlessPython(['json', 'tessia_no_such_module'], 'needs it', {}), 'needs it');
    assert.throws(
      () => skipUnlessPython(['tessia_no_such_module'], 'needs it', { TESSIA_REQUIRE_ALL_SUITES: '1' }),
      /needs it — \/usr\/bin\/python3 cannot import: tessia_no_such_module; TESSIA_REQUIRE_ALL_SUITES=1 forbids/,
    );
  });
});

/**
 * Makes the system's jsonschema (and what it imports) importable in the venv, as `pip install
 * jsonschema` would, without python3-systemd: a .pth file naming a directory of links to them.
 */
function installJsonschemaInto(python: string): void {
  const listing = spawnSync(
    SYSTEM_PYTHON,
    [
      '-I',
      '-c',
      [
        'import os, sys, jsonschema',
        'roots = {p for p in sys.path if p.endswith(("dist-packages", "site-packages"))}',
        'tops = set()',
        'for module in list(sys.modules.values()):',
        '    file = getattr(module, "__file__", None) or ""',
        '    for root in roots:',
        '        if file.startswith(root + os.sep):',
        '            tops.add(os.path.join(root, file[len(root) + 1:].split(os.sep)[0]))',
        'print("\\n".join(sorted(tops)))',
      ].join('\n'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(listing.status, 0, listing.stderr);
  const links = join(workDirectory, 'venv-deps');
  mkdirSync(links);
  for (const target of listing.stdout.split('\n').filter(Boolean)) symlinkSync(target, join(links, basename(target)));
  const sitePackages = spawnSync(python, ['-I', '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' });
  assert.equal(sitePackages.status, 0, sitePackages.stderr);
  writeFileSync(join(sitePackages.stdout.trim(), 'tessia-test-deps.pth'), `${links}\n`);
}
