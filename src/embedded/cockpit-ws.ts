/**
 * Debian's cockpit-ws inside the private systemd, as root with a local session (no login), serving
 * the Cockpit page as the package installs it (dist/cockpit), its socket set by a manifest override:
 * for the browser tests and the page's benchmark. A root session without a login must reach no one
 * but the test: cockpit-ws has a network of its own (PrivateNetwork=yes: only its own loopback), and
 * the browser is started inside it (`browserExecutable`), as is every request made to it.
 */
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { APP_DIR_INSIDE, type PrivateSystemd } from './private-systemd.js';

export const COCKPIT_WS = '/usr/lib/cockpit/cockpit-ws';
export const CHROMIUM = '/usr/bin/chromium';
/** The page's directory name under /usr/share/cockpit: its URL path. */
export const COCKPIT_PACKAGE = 'tessia-task-runner';
/** cockpit-ws's port, on its own loopback. */
const PORT = 9090;

/** Chromium as playwright drives it here: Debian's, inside cockpit-ws's network. */
export const BROWSER_OPTIONS = { args: ['--no-sandbox'] };

export interface CockpitService {
  /** http://127.0.0.1:9090, reachable only inside cockpit-ws's network. */
  base: string;
  /** The page opened directly (outside Cockpit's shell): its own connection, no frame. */
  pageUrl: string;
  /** Chromium, started in cockpit-ws's network: for playwright's executablePath. */
  browserExecutable: string;
  stop(): Promise<void>;
}

/**
 * `socket`: the runner's API socket (a path inside the private system). `user`: cockpit-ws and its
 * bridge as this user instead of root (the page then has that user's rights on the socket).
 */
export async function startCockpit(systemd: PrivateSystemd, socket: string, name: string, user?: string): Promise<CockpitService> {
  const unit = `tessia-test-${name}.service`;
  const dir = `/run/tessia-test/${name}`;
  const packageDir = `${systemd.root}${dir}/share/cockpit/${COCKPIT_PACKAGE}`;
  mkdirSync(packageDir, { recursive: true });
  cpSync(`${systemd.root}${APP_DIR_INSIDE}/dist/cockpit`, packageDir, { recursive: true });
  writeFileSync(join(packageDir, 'override.json'), JSON.stringify({ config: { socket } }));
  // Readable by the bridge's user, whatever this process's umask.
  for (const each of [dir, `${dir}/share`, `${dir}/share/cockpit`, `${dir}/share/cockpit/${COCKPIT_PACKAGE}`])
    chmodSync(`${systemd.root}${each}`, 0o755);
  const started = await systemd.run([
    'systemd-run',
    `--unit=${unit}`,
    '--property=PrivateNetwork=yes',
    ...(user === undefined ? [] : [`--property=User=${user}`]),
    `--property=Environment=XDG_DATA_DIRS=${dir}/share:/usr/share`,
    COCKPIT_WS,
    '--no-tls',
    '--address=127.0.0.1',
    `--port=${PORT}`,
    '--local-session=cockpit-bridge',
  ]);
  if (started.code !== 0) throw new Error(`cockpit-ws did not start: ${started.stderr}`);
  const pid = await eventually(
    'cockpit-ws running',
    async () => Number((await systemd.show(unit, ['MainPID']))['MainPID']),
    (found) => found > 0,
  );
  const network = `/proc/${pid}/ns/net`;
  const base = `http://127.0.0.1:${PORT}`;
  const probe = `fetch(process.argv[1]).then((r) => console.log(r.status), () => console.log(0))`;
  await eventually(
    'cockpit-ws answering',
    async () =>
      (
        await systemd.run([
          'nsenter',
          `--net=${network}`,
          '/usr/bin/node',
          '-e',
          probe,
          `${base}/cockpit/@localhost/${COCKPIT_PACKAGE}/manifest.json`,
        ])
      ).stdout.trim(),
    (status) => status === '200',
  );
  const browserExecutable = `${systemd.root}${dir}/chromium`;
  // Made here, whole, by this process (no file planted before it is followed), for root alone.
  writeFileSync(browserExecutable, `#!/bin/sh\nexec nsenter --net=${systemd.root}${network} ${CHROMIUM} "$@"\n`, {
    mode: 0o700,
    flag: 'wx',
  });
  return {
    base,
    pageUrl: `${base}/cockpit/@localhost/${COCKPIT_PACKAGE}/index.html`,
    browserExecutable,
    stop: async () => {
      await systemd.systemctl('stop', unit);
      rmSync(`${systemd.root}${dir}`, { recursive: true, force: true });
    },
  };
}
