/** What the package (units/, packaging/) and the code must agree on: one definition each. */

/**
 * The API's Unix socket (tessia-task-runner.socket: systemd owns it, so it outlives restarts of the
 * service); the CLI's default when it exists.
 */
export const PACKAGE_API_SOCKET = '/run/tessia-task-runner.sock';

/** Members of this group (and root) may use the Unix socket: start, stop and delete tasks, read every log. */
export const ADMIN_GROUP = 'tessia-task-runner-admin';
