/**
 * The runner as the tests run it: with the tests' machines, a crash at a chosen step of a start or
 * a delete (serve-with-faults.ts), files for it to read, and its store as SQLite has it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { APP_DIR_INSIDE, PrivateSystemd } from '../../src/embedded/private-systemd.js';
import { eventually } from '../../src/embedded/eventually.js';
import { startRunnerService, type RunnerService, type RunnerServiceOptions } from '../../src/embedded/runner-service.js';

// No ${…} in it: systemd would expand that in ExecStart=.
const REACH_URL = [
  '/usr/bin/node',
  '-e',
  'const url = JSON.parse(require("fs").readFileSync(0, "utf8")); fetch(url, { signal: AbortSignal.timeout(3000) }).then((r) => console.log("api:" + r.status), () => console.log("api:blocked"));',
];

/** The machines the tests use; short grace periods, so the tests' stops do not wait a minute. */
export const TEST_MACHINES = {
  echo: { builtin: 'echo', description: 'echo for tests', limits: { stopGraceSec: 10 } },
  'echo-short': { builtin: 'echo', limits: { runtimeMaxSec: 2, stopGraceSec: 2 } },
  'no-such-program': { exec: ['/nonexistent/tessia-machine'], description: 'a machine whose program is missing' },
  seq1000: { exec: ['/usr/bin/seq', '1', '1000'] },
  burst: { exec: ['/usr/bin/seq', '1', '100000'] },
  // 300 000 lines from ten processes at once: what journald 252's rate limit cut to 63 140 before.
  'burst-children': { exec: ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do seq 1 30000 & done; wait'] },
  blob: {
    exec: ['/bin/sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo; printf "bin\\377\\376ary\\n"; echo after'],
  },
  sleeper: { exec: ['/bin/sh', '-c', 'echo first; sleep 60'] },
  // At most two of its tasks at once.
  'two-at-once': { exec: ['/bin/sh', '-c', 'echo first; sleep 60'], limits: { maxActive: 2, stopGraceSec: 2 } },
  // Takes its whole grace period to stop: SIGTERM does not end it.
  'ignores-term': { exec: ['/bin/sh', '-c', 'trap "" TERM; echo trapped; while :; do sleep 0.2; done'], limits: { stopGraceSec: 120 } },
  // Reports what its sandbox lets it do, one "check:result" line each.
  probe: {
    exec: [
      '/bin/sh',
      '-c',
      [
        'echo "uid:$(id -u)"',
        'touch /etc/tessia-probe 2>/dev/null && echo etc:writable || echo etc:denied',
        'touch /usr/tessia-probe 2>/dev/null && echo usr:writable || echo usr:denied',
        'touch /run/tessia-probe 2>/dev/null && echo run:writable || echo run:denied',
        'touch "$PWD/own-file" && echo workdir:writable || echo workdir:denied',
        'echo "workdir-path:$PWD"',
        'touch /tmp/probe-$TESSIA_TASK_ID && echo tmp:writable || echo tmp:denied',
        'echo "tmp-entries:$(ls -A /tmp | tr "\\n" " ")"',
        'echo "nonewprivs:$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)"',
        'echo "capeff:$(grep CapEff /proc/self/status | cut -f2)"',
        'echo "secret-$TESSIA_TASK_ID" > "$PWD/secret"',
        'echo written',
        'sleep 60',
      ].join('; '),
    ],
  },
  // Tries the URL given as its parameters (a JSON string, on its stdin): "api:<status>", or "api:blocked".
  'reach-url': { exec: REACH_URL },
  'reach-url-loopback': { exec: REACH_URL, sandbox: { allowLoopback: true } },
  // Runs as a user the starter test makes with UID 0 under another name than root.
  'uid0-alias': { exec: ['/bin/true'], sandbox: { user: 'tessia-test-toor' } },
  // Runs as a user the starter test makes with root's group as its primary group.
  'gid0-primary': { exec: ['/bin/true'], sandbox: { user: 'tessia-test-gid0' } },
  // Tries to read the path given as its parameters (a JSON string, on its stdin).
  'read-path': {
    exec: ['/bin/sh', '-c', 'p=$(tr -d \'"\'); cat "$p" >/dev/null 2>&1 && echo read:allowed || echo read:denied'],
  },
  hog: {
    // Bounded: 512 MiB at most, so a limit that does not hold fails the test, not the machine.
    exec: [
      '/usr/bin/node',
      '-e',
      'const kept = []; for (let i = 0; i < 512; i++) kept.push(Buffer.alloc(1 << 20, 1)); console.log("survived");',
    ],
    limits: { memoryMax: '64M' },
  },
  // Holds 48 MiB for 3 s, working the CPU meanwhile: what a usage figure must show.
  'uses-resources': {
    exec: [
      '/usr/bin/node',
      '-e',
      'const kept = Buffer.alloc(48 << 20, 1); const end = Date.now() + 3000; let n = 0; while (Date.now() < end) n += kept[n % kept.length]; console.log("done", n > 0);',
    ],
  },
  // Checks its parameters (a JSON string) before a start: "ok…" passes; the rest shows each verdict.
  checked: {
    exec: ['/bin/sh', '-c', 'echo "ran with $(cat)"'],
    check: [
      '/bin/sh',
      '-c',
      [
        'p=$(cat)',
        'case "$p" in',
        '  \\"ok*) echo "fine" ; exit 0 ;;',
        // Its own process group: no $$ (systemd reads "$$" in ExecStart= as "$").
        '  \\"crash*) kill -s SEGV 0 ;;',
        '  \\"hang*) sleep 60 ;;',
        '  \\"broken*) echo "cannot load helper module" >&2 ; exit 127 ;;',
        // "whoami PATH": who the check runs as, and whether it can read PATH (the runner's state).
        '  \\"whoami*) t=$(echo "$p" | tr -d \'"\' | cut -d " " -f 2) ; echo "uid=$(id -u) nonewprivs=$(grep NoNewPrivs /proc/self/status | tr -dc 0-9) peek=$(ls "$t" >/dev/null 2>&1 && echo readable || echo denied)" >&2 ; exit 1 ;;',
        '  \\"flood*) head -c 3000000 /dev/zero | tr "\\0" x >&2 ; echo flooded >&2 ; exit 1 ;;',
        '  *) echo "a first line of noise" >&2 ; echo "unknown target $p" >&2 ; exit 2 ;;',
        'esac',
      ].join('\n'),
    ],
    limits: { checkTimeoutSec: 1, maxActive: 2 },
  },
  // Runs until the test creates /run/tessia-test/release (tests control the timing), then exits 3.
  'until-released': {
    exec: ['/bin/sh', '-c', 'echo waiting; while [ ! -e /run/tessia-test/release ]; do sleep 0.1; done; echo released; exit 3'],
  },
};

/**
 * A runner with the tests' machines (`config.machines` replaces them) and anonymous callers allowed
 * (`config.auth` replaces that), starting its tasks through
 * a privileged starter of its own as the package does (`starter: false` for one that starts them itself).
 */
export function startTestRunner(config: Record<string, unknown> = {}, options: RunnerServiceOptions = {}): Promise<RunnerService> {
  // Anonymous callers on loopback may do everything, as with `npm start`, unless the test sets `auth`.
  return startRunnerService({ machines: TEST_MACHINES, auth: { anonymous: 'write' }, ...config }, { starter: true, ...options });
}

export { FAULT_FILLER } from './fill-disk.js';

/**
 * (Re)starts the runner so that it dies by SIGKILL at this step of the next task start (or delete),
 * or, with fill-after-record, fills its state directory's file system (FAULT_FILLER) after each start's record.
 */
export function startWithFault(
  runner: RunnerService,
  fault: 'after-record' | 'after-start' | 'after-forget' | 'after-event' | 'fill-after-record',
): Promise<void> {
  const entry = ['--import', 'tsx', `${APP_DIR_INSIDE}/test/harness/serve-with-faults.ts`];
  return runner.start({ TESSIA_FAULT: fault }, [], entry);
}

/** Where a test may put files the runner reads (TLS material, token files), inside the private system. */
export function fileForRunner(name: string, content: string | Buffer): string {
  const systemd = PrivateSystemd.fromEnvironment();
  const path = `/run/tessia-test/files/${randomBytes(4).toString('hex')}-${name}`;
  mkdirSync(`${systemd.root}/run/tessia-test/files`, { recursive: true });
  writeFileSync(`${systemd.root}${path}`, content);
  return path;
}

/**
 * A task's row in the runner's store, forgotten ones included (the API shows neither those nor
 * rows that are gone), or null when there is none. Read inside the private system: SQLite resolves
 * /proc/PID/root to the host's / otherwise.
 */
export async function storedRow(runner: RunnerService, taskId: string): Promise<Record<string, unknown> | null> {
  const script = `const db = require('${APP_DIR_INSIDE}/node_modules/better-sqlite3')('${runner.stateDir}/tasks.sqlite3');
    console.log(JSON.stringify(db.prepare('SELECT * FROM tasks WHERE task_id = ?').get(process.argv[1]) ?? null));`;
  const result = await runner.systemd.run(['/usr/bin/node', '-e', script, taskId]);
  if (result.code !== 0) throw new Error(`reading the store: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Waits until the runner has dropped the task's row from its store (a delete finished). */
export async function waitForRowGone(runner: RunnerService, taskId: string): Promise<void> {
  await eventually(
    'the row gone',
    () => storedRow(runner, taskId),
    (row) => row === null,
  );
}
