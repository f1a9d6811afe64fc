/** What the package (units/, packaging/) and the code must agree on: one definition each. */

/**
 * The API's Unix socket (tessia-task-runner.socket: systemd owns it, so it outlives restarts of the
 * service); the CLI's default when it exists.
 */
export const PACKAGE_API_SOCKET = '/run/tessia-task-runner.sock';

/** The runner's user and group (sysusers: units/tessia-task-runner.sysusers). */
export const RUNNER_USER = 'tessia-task-runner';

/** Members of this group (and root) may use the Unix socket: start, stop and delete tasks, read every log. */
export const ADMIN_GROUP = 'tessia-task-runner-admin';

/**
 * The journal namespace of task output: every task unit logs there (LogNamespace=), to a journald
 * of its own (systemd-journald@tessia.service, socket-activated by the first task) with its own
 * files (/var/log/journal/<machine-id>.tessia) and its own settings, which the package ships as
 * /usr/lib/systemd/journald@tessia.conf.d/60-tessia-task-runner.conf (units/): no rate limit and
 * its own size limits, the host's journald left as it is. `journalctl --namespace=tessia` reads it.
 */
export const TASK_LOG_NAMESPACE = 'tessia';
