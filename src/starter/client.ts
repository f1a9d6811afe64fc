/**
 * The runner's side of the privileged starter: one connection, opened on first use and again after
 * it is lost, with the requests of concurrent starts in flight on it, answered by id.
 */
import { createConnection, type Socket } from 'node:net';
import { DISCONNECTED, OUTCOME_UNKNOWN, SystemdError } from '../systemd/client.js';
import { CheckersBusyError, type CheckRequest, type CheckVerdict, type TaskStartRequest, type TaskStarter } from '../tasks/task-starter.js';
import { splitLines } from '../line-socket.js';
import { STARTER_ERRORS, StarterReplySchema, type UnitAction } from './protocol.js';

const ANSWER_LIMIT = 1024 * 1024;

/** What a request in flight waits for: a start job's result, a check's verdict, or a unit action done. */
type Answer = { result: string } | { verdict: CheckVerdict } | { done: true };

interface Pending {
  resolve: (answer: Answer) => void;
  reject: (error: Error) => void;
}

/** The starter answered with a refusal or with systemd's error; its D-Bus-style name is kept. */
export class StarterError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = 'StarterError';
  }
}

export class StarterClient implements TaskStarter {
  private connection: Promise<Socket> | null = null;
  private current: Socket | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /** `settings`: the digest of the unit settings the runner uses now (it changes with a reload). */
  constructor(
    readonly socketPath: string,
    private readonly settings: () => string,
  ) {}

  async start(request: TaskStartRequest): Promise<string> {
    // Without `op`: a start, as a starter from before checks reads it too (an upgrade's overlap).
    const answer = await this.ask({ ...request });
    if (!('result' in answer)) throw new StarterError('tessia.Starter.Failed', 'the starter answered a start with a verdict');
    return answer.result;
  }

  async check(request: CheckRequest): Promise<CheckVerdict> {
    const answer = await this.ask({ op: 'check', ...request }).catch((error: unknown) => {
      if (error instanceof StarterError && error.errorName === STARTER_ERRORS.busy)
        throw new CheckersBusyError(error.message, { cause: error });
      throw error;
    });
    if (!('verdict' in answer)) throw new StarterError('tessia.Starter.Failed', 'the starter answered a check with a start result');
    return answer.verdict;
  }

  /**
   * Has the starter stop, kill (SIGKILL) or reset the unit of task `taskId`. systemd's refusal comes
   * as a SystemdError with its D-Bus name (NoSuchUnit: the unit is gone), as the runner's own call's
   * would; a starter that could not (unreachable, busy, an older one) as a StarterError.
   */
  async controlUnit(action: UnitAction, taskId: string): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.ask({ op: 'unit', action, taskId }, { settings: false });
    } catch (error) {
      if (error instanceof StarterError && error.errorName.startsWith('org.freedesktop.')) {
        throw new SystemdError(error.message, error.errorName, { cause: error });
      }
      throw error;
    }
    if (!('done' in answer)) throw new StarterError('tessia.Starter.Failed', 'the starter answered a unit action with something else');
  }

  /** `settings: false`: a request that builds no unit, without the digest of the unit settings. */
  private async ask(request: Record<string, unknown>, { settings = true } = {}): Promise<Answer> {
    if (this.closed) throw new StarterError(DISCONNECTED, 'the runner is shutting down');
    // Not reached: nothing was sent, so nothing started.
    const socket = await this.connect().catch((error: unknown) => {
      throw new StarterError(
        'tessia.Starter.Unreachable',
        `the privileged starter at ${this.socketPath} is not reachable: ${describe(error)}`,
      );
    });
    const id = this.nextId++;
    const answer = new Promise<Answer>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    socket.write(`${JSON.stringify({ id, ...(settings ? { settings: this.settings() } : {}), ...request })}\n`);
    return answer;
  }

  close(): void {
    this.closed = true;
    void this.connection?.then((socket) => socket.destroy()).catch(() => undefined);
    this.connection = null;
  }

  private connect(): Promise<Socket> {
    this.connection ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.socketPath);
      this.current = socket;
      socket.once('connect', () => resolve(socket));
      // Before the connection: the start is refused (nothing sent). After it: 'close' follows, and
      // lost() answers what was in flight.
      socket.on('error', reject);
      socket.on('close', () => this.lost(socket));
      // The starter's answers are small; a line this long is not one of them.
      splitLines(socket, { limit: () => ANSWER_LIMIT, onLine: (line) => this.answered(line), onOverflow: () => socket.destroy() });
    });
    return this.connection;
  }

  private answered(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    const valid = StarterReplySchema.safeParse(parsed);
    if (!valid.success) return;
    const reply = valid.data;
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if ('result' in reply) pending.resolve({ result: reply.result });
    else if ('verdict' in reply) pending.resolve({ verdict: reply.verdict });
    else if ('done' in reply) pending.resolve({ done: true });
    else if (OUTCOME_UNKNOWN.has(reply.error.name)) {
      // The starter lost systemd mid-start: whether the unit started is unknown, as when the runner
      // loses the starter. Tracking settles it once systemd answers.
      pending.reject(new SystemdError(`the privileged starter lost systemd before its answer: ${reply.error.message}`, DISCONNECTED));
    } else pending.reject(new StarterError(reply.error.name, reply.error.message));
  }

  /** Requests sent on a lost connection may or may not have started their unit: systemd will tell. */
  private lost(socket: Socket): void {
    socket.destroy();
    if (this.current !== socket) return;
    this.current = null;
    this.connection = null;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new SystemdError('lost the privileged starter before its answer', DISCONNECTED));
    }
  }
}

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
