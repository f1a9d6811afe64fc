/**
 * Debian's cockpit-ws inside the private systemd, as root with a local session (no login), serving
 * the Cockpit page as the package installs it (dist/cockpit), its socket set by a manifest override:
 * for the browser tests and the page's benchmark.
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { APP_DIR_INSIDE, type PrivateSystemd } from './private-systemd.js';
import { freePort } from './runner-service.js';

export const COCKPIT_WS = '/usr/lib/cockpit/cockpit-ws';
/** The page's directory name under /usr/share/cockpit: its URL path. */
export const COCKPIT_PACKAGE = 'tessia-task-runner';

export interface CockpitService {
  /** http://127.0.0.1:PORT */
  base: string;
  /** The page opened directly (outside Cockpit's shell): its own connection, no frame. */
  pageUrl: string;
  stop(): Promise<void>;
}

/** `socket`: the runner's API socket (a path inside the private system). */
export async function startCockpit(systemd: PrivateSystemd, socket: string, name: string): Promise<CockpitService> {
  const unit = `tessia-test-${name}.service`;
  const shareDir = `/run/tessia-test/${name}-share`;
  const packageDir = `${systemd.root}${shareDir}/cockpit/${COCKPIT_PACKAGE}`;
  mkdirSync(packageDir, { recursive: true });
  cpSync(`${systemd.root}${APP_DIR_INSIDE}/dist/cockpit`, packageDir, { recursive: true });
  writeFileSync(join(packageDir, 'override.json'), JSON.stringify({ config: { socket } }));
  const port = await freePort();
  const started = await systemd.run([
    'systemd-run',
    `--unit=${unit}`,
    `--property=Environment=XDG_DATA_DIRS=${shareDir}:/usr/share`,
    COCKPIT_WS,
    '--no-tls',
    '--address=127.0.0.1',
    `--port=${port}`,
    '--local-session=cockpit-bridge',
  ]);
  if (started.code !== 0) throw new Error(`cockpit-ws did not start: ${started.stderr}`);
  const base = `http://127.0.0.1:${port}`;
  await eventually(
    'cockpit-ws answering',
    () =>
      fetch(`${base}/cockpit/@localhost/${COCKPIT_PACKAGE}/manifest.json`).then(
        (r) => r.status,
        () => 0,
      ),
    (status) => status === 200,
  );
  return {
    base,
    pageUrl: `${base}/cockpit/@localhost/${COCKPIT_PACKAGE}/index.html`,
    stop: async () => {
      await systemd.systemctl('stop', unit);
      rmSync(`${systemd.root}${shareDir}`, { recursive: true, force: true });
    },
  };
}
