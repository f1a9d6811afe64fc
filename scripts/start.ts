/**
 * `npm start -- [serve flags]`: runs the service against the host's systemd when it is PID 1;
 * otherwise (as root) boots a private systemd, runs the service inside it as a unit, and shows its
 * log until Ctrl-C, which powers the private system off.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { APP_DIR_INSIDE, REPO_DIR, bootPrivateSystemd } from '../src/embedded/private-systemd.js';
import { runnerLogLine } from '../src/embedded/runner-log.js';
import { startRunnerUnit } from '../src/embedded/runner-unit.js';
import { TASK_LOG_NAMESPACE } from '../src/package-layout.js';

const args = process.argv.slice(2);
const given = args[0] === 'serve' ? args.slice(1) : args;
const say = (line: string) => process.stderr.write(`[start] ${line}\n`);
const UNIT = 'tessia-task-runner.service';
/** Its config unless one is given: anonymous callers on loopback may do everything (the banner says so). */
const OPEN_CONFIG = 'scripts/start-config.yaml';
const ownConfig = !given.includes('--config');
/** The serve flags, with the open config (at `appDir`) unless the caller gave one. */
const flagsWith = (appDir: string) => (ownConfig ? ['--config', `${appDir}/${OPEN_CONFIG}`, ...given] : given);
const sayWhatIsOpen = () => {
  if (!ownConfig) return;
  say(`OPEN: anonymous callers may start, stop and delete tasks and read every log (auth.anonymous: write, ${OPEN_CONFIG}):`);
  say('  that is every local user and every local process; tasks themselves cannot reach it (IPAddressDeny=localhost).');
  say('  The installed package allows this to root and tessia-task-runner-admin only (its Unix socket), others with a token.');
};

if (existsSync('/run/systemd/system')) {
  if (process.getuid?.() !== 0) {
    // Its store in /var/lib, and task units started on the host's systemd: root's, or the package's
    // user with its privileged starter (npm run package:deb).
    say('the runner starts units on this host’s systemd and keeps its store in /var/lib: run `sudo npm start`.');
    process.exit(1);
  }
  sayWhatIsOpen();
  const child = spawn(process.execPath, [`${REPO_DIR}/dist/cli/main.js`, 'serve', ...flagsWith(REPO_DIR)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  if (process.getuid?.() !== 0) {
    say('systemd is not PID 1 here, and booting a private one needs root: run `sudo npm start`.');
    process.exit(1);
  }
  say('systemd is not PID 1 on this machine: booting a private systemd (pid+mount namespace) for the runner.');
  const booted = await bootPrivateSystemd({ log: say });
  const { systemd } = booted;
  const flags = flagsWith(APP_DIR_INSIDE);
  const listen = flags.includes('--listen') ? [] : ['--listen', '127.0.0.1:7356'];
  // Its log from the start, as people read it (the JSON stays in the journal: journalctl -o json).
  const follow = spawn(
    'nsenter',
    ['-t', String(systemd.pid), '-m', '-p', '--', 'journalctl', '-f', '-n', 'all', '-o', 'json', '-u', UNIT],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  createInterface({ input: follow.stdout }).on('line', (line) => {
    const text = runnerLogLine(line);
    if (text !== null) process.stdout.write(`${text}\n`);
  });
  const started = await startRunnerUnit(systemd, {
    unit: UNIT,
    properties: ['StateDirectory=tessia-task-runner'],
    serveArgs: [...listen, ...flags],
  });
  if (started.code !== 0) {
    say(`could not start the runner: ${started.stderr}`);
    follow.kill('SIGTERM');
    await booted.shutdown();
    process.exit(1);
  }
  say(`the runner runs as ${UNIT} in the private systemd (host PID ${systemd.pid}).`);
  say(`  inspect it: nsenter -t ${systemd.pid} -m -p systemctl list-units 'tessia-*'`);
  say(`  task logs:  nsenter -t ${systemd.pid} -m -p journalctl --namespace=${TASK_LOG_NAMESPACE} TESSIA_TASK_ID=<id>`);
  sayWhatIsOpen();
  say('Ctrl-C stops the runner, its tasks and the private systemd.');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping the private systemd');
    follow.kill('SIGTERM');
    await booted.shutdown();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  follow.on('exit', () => void stop());
}
