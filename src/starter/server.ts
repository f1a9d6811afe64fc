/**
 * The privileged starter's side of the socket: each line a request (a start, a check, a unit
 * action), each answer a line with the same id, in the order they finish. A line that is not a valid request is answered
 * with a refusal; a line longer than any valid request ends the connection.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { splitLines } from '../line-socket.js';
import { SystemdError } from '../systemd/client.js';
import { ENVELOPE_BYTES, STARTER_ERRORS, StarterRequestSchema, type StarterReply, type StarterRequest } from './protocol.js';
import { StartRefused, type TaskUnitStarter } from './task-unit-starter.js';

export interface StarterServerOptions {
  /** The largest parameters the config allows: a line may be that plus the envelope. */
  maxParameterBytes: () => number;
  /** Requests under way at once; more are refused as busy (the runner caps its own, far lower). */
  maxInFlight: number;
  /** Checks among them: a check lasts up to its timeout, and starts must always find room. */
  maxChecksInFlight: number;
  /** Unit actions among them: the end of many tasks at once must not take starts' room (the runner then acts itself). */
  maxUnitActionsInFlight: number;
  /**
   * Called before each start with the digest of the settings the runner checked it against: makes
   * the starter use those same settings, or refuses the start (StartRefused).
   */
  beforeStart?: (settings: string) => Promise<void>;
}

export class StarterServer {
  private inFlight = 0;
  private checksInFlight = 0;
  private unitActionsInFlight = 0;
  private readonly idle = new Set<() => void>();
  private draining = false;

  constructor(
    private readonly starter: TaskUnitStarter,
    private readonly options: StarterServerOptions,
    private readonly log: Logger,
  ) {}

  serve(server: Server): void {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Refuses new requests and resolves once the starts under way have finished. */
  async drain(): Promise<void> {
    this.draining = true;
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private accept(socket: Socket): void {
    socket.on('error', (error) => this.log.debug({ err: error }, 'starter connection error'));
    splitLines(socket, {
      limit: () => this.options.maxParameterBytes() + ENVELOPE_BYTES,
      onLine: (line) => void this.handle(socket, line),
      onOverflow: (limit) => this.refuseConnection(socket, limit),
    });
  }

  private refuseConnection(socket: Socket, limit: number): void {
    this.log.warn({ limit }, 'starter: a request line over the limit; connection closed');
    socket.destroy();
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    const reply = await this.answer(line);
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  }

  private async answer(line: string): Promise<StarterReply> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return { id: -1, error: { name: STARTER_ERRORS.invalidRequest, message: 'not JSON' } };
    }
    const request = StarterRequestSchema.safeParse(parsed);
    const id = typeof (parsed as { id?: unknown } | null)?.id === 'number' ? (parsed as { id: number }).id : -1;
    if (!request.success) {
      const where = request.error.issues.map((issue) => issue.path.join('.') || '(request)').join(', ');
      return { id, error: { name: STARTER_ERRORS.invalidRequest, message: `invalid request: ${where}` } };
    }
    if (this.draining) return { id, error: { name: STARTER_ERRORS.shuttingDown, message: 'the starter is shutting down' } };
    const { data } = request;
    // Before a slot is taken: a burst of unit actions refused here holds none of starts' room.
    if (data.op === 'unit' && this.unitActionsInFlight >= this.options.maxUnitActionsInFlight) {
      return {
        id,
        error: { name: STARTER_ERRORS.busy, message: `${this.options.maxUnitActionsInFlight} unit actions are under way already` },
      };
    }
    if (this.inFlight >= this.options.maxInFlight) {
      return { id, error: { name: STARTER_ERRORS.busy, message: `${this.options.maxInFlight} requests are under way already` } };
    }
    this.inFlight += 1;
    try {
      if (data.op === 'unit') return await this.act(id, data);
      await this.options.beforeStart?.(data.settings);
      return await this.run(id, data);
    } catch (error) {
      if (error instanceof StartRefused) return { id, error: { name: error.errorName, message: error.message } };
      const name = error instanceof SystemdError && error.dbusName ? error.dbusName : 'tessia.Starter.Failed';
      // A unit gone already (NoSuchUnit) is the runner's to settle, as its own call's answer would be.
      if (data.op === 'unit') this.log.debug({ taskId: data.taskId, action: data.action, err: error }, 'a unit action failed');
      else
        this.log.warn(
          { taskId: data.op === 'start' ? data.taskId : undefined, machine: data.machine, op: data.op, err: error },
          'starting a unit failed',
        );
      return { id, error: { name, message: messageOf(error) } };
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const resolve of this.idle) resolve();
      if (this.inFlight === 0) this.idle.clear();
    }
  }

  private async act(id: number, request: Extract<StarterRequest, { op: 'unit' }>): Promise<StarterReply> {
    this.unitActionsInFlight += 1;
    try {
      await this.starter.controlUnit(request.action, request.taskId);
      return { id, done: true };
    } finally {
      this.unitActionsInFlight -= 1;
    }
  }

  private async run(id: number, request: Exclude<StarterRequest, { op: 'unit' }>): Promise<StarterReply> {
    const { machine, parameters } = request;
    if (request.op === 'check') {
      if (this.checksInFlight >= this.options.maxChecksInFlight) {
        return { id, error: { name: STARTER_ERRORS.busy, message: `${this.options.maxChecksInFlight} checks are under way already` } };
      }
      this.checksInFlight += 1;
      try {
        const verdict = await this.starter.check({ machine, parameters });
        // The outcome only: a reason is the client's answer, not the starter's log.
        this.log.info({ machine, outcome: verdict.outcome }, 'parameters checked');
        return { id, verdict };
      } finally {
        this.checksInFlight -= 1;
      }
    }
    const result = await this.starter.start({ taskId: request.taskId, machine, parameters });
    this.log.info({ taskId: request.taskId, machine, result }, 'task unit started');
    return { id, result };
  }
}
