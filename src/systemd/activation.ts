/** The sockets systemd passed us (LISTEN_FDS, socket activation), as file descriptors. */
export function activationFds(environment: NodeJS.ProcessEnv = process.env): number[] {
  const count = Number(environment['LISTEN_FDS']);
  const pid = Number(environment['LISTEN_PID']);
  if (!Number.isInteger(count) || count <= 0 || pid !== process.pid) return [];
  return Array.from({ length: count }, (_, index) => 3 + index);
}
