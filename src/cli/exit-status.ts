/**
 * The exit statuses of `tessia-task-runner`, one vocabulary for every command (README's and
 * docs/admin.md's lists say the same). `serve` exits 0 when stopped, 1 when it fails, 2 for a bad
 * command line or config, and `nativeAddonMismatch` when its compiled addons were built for another
 * Node.js: the BSD sysexits EX_CONFIG (the system is in a state it cannot run in), which systemd
 * names ("status=78/CONFIG") and which Node.js never uses itself (it exits 1-14 or by a signal), so
 * the service unit lists it in RestartPreventExitStatus= without also keeping Node's own crashes
 * from a restart. A restart cannot fix that state; only an admin can.
 */
export const EXIT = {
  ok: 0,
  /** a task failed (exit code not 0, or lost), a reload was refused, or another error */
  failed: 1,
  /** a bad command line, or (serve) a config that is refused or a task store of a newer release */
  usage: 2,
  /** task: no such task */
  notFound: 3,
  /** task: not allowed (401/403) */
  denied: 4,
  /** task, reload: the runner is unreachable or unavailable */
  unavailable: 5,
  /** serve: its native addons were built for another Node.js (src/native-abi.ts) */
  nativeAddonMismatch: 78,
} as const;
