/**
 * For development: boots the private systemd the tests use and keeps it up until Ctrl-C (or
 * SIGTERM), printing how to reach it. `npm run systemd`
 */
import { bootPrivateSystemd } from '../src/embedded/private-systemd.js';

const say = (line: string) => process.stderr.write(`[systemd] ${line}\n`);
const booted = await bootPrivateSystemd({ log: say });
const { pid } = booted.systemd;
say(`up: nsenter -t ${pid} -m -p systemctl status   |   bus: ${booted.systemd.busAddress}`);
const stop = () => void booted.shutdown().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
