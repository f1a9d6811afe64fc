/**
 * An HTTP front over the bare side's D-Bus calls, in a process of its own (the `front` side of
 * TESSIA_BENCH=ab): a node:http server that, on a request, makes exactly the bare start or the bare
 * stop and answers once it is done — no store, no validation beyond the unit's name, no middleware.
 * The floor of any HTTP API over systemd on this machine: what one more process and an HTTP round
 * trip cost at the moment of a start or a stop. Bench-only: spawned by bench/ab.ts on 127.0.0.1,
 * as root; every path starts with a secret the bench gives it (other local users reach the port).
 *
 * GET /healthz → {}; POST /start → 201 {unit} (a unit of the `bench-sleep-60` machine, running on);
 * POST /start-ending → 201 {unit} (a unit of `bench-sleep`, ending at once: followed, and at its end
 * its CPU time read and the unit collected, as the runner and the bare sustained starts do);
 * POST /stop {unit} → 200 {state: 'exited'} once its stop job is done; POST /stops-done → 200 {} once
 * the stops' bus connection is closed; POST /stop-all → 200 {} once the units it started are stopped
 * and collected.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { BareStarter } from './starts.js';
import { BareUnits, BARE_STOP_UNIT } from './stops.js';

export interface FrontEnvironment {
  busAddress: string;
  /** The private system's root as this process sees it (bare parameters files are written there). */
  root: string;
  /** Every path's first segment: a request without it is not found. */
  secret: string;
  /** Follows each unit it starts (a match rule for its changes, each read and decoded) as the runner does. */
  follows: boolean;
}

/** The front's process reads its bus and the private system's root from these. */
export const FRONT_ENV = {
  busAddress: 'TESSIA_BENCH_FRONT_BUS',
  root: 'TESSIA_BENCH_FRONT_ROOT',
  secret: 'TESSIA_BENCH_FRONT_SECRET',
  /** `1`: the front follows its units (FrontEnvironment.follows); the bench's own setting, inherited. */
  follows: 'TESSIA_BENCH_FRONT_FOLLOWS',
} as const;

const MAX_BODY_BYTES = 1024;

/**
 * A bus connection made at its first use, once: concurrent first requests share it; a failed one is
 * forgotten (the next request tries again), unless another has replaced it meanwhile.
 */
class Lazy<T> {
  private made: Promise<T> | undefined;

  constructor(private readonly connect: () => Promise<T>) {}

  get(): Promise<T> {
    if (this.made) return this.made;
    const made = this.connect().catch((error: unknown) => {
      if (this.made === made) this.made = undefined;
      throw error;
    });
    this.made = made;
    return made;
  }

  /** The connection if one was made (or is being made); forgotten here. */
  take(): Promise<T> | undefined {
    const made = this.made;
    this.made = undefined;
    return made;
  }
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.statusCode = status;
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify(body));
}

/** The request's JSON body (null when empty); undefined when it is larger than a stop's or not JSON. */
async function bodyOf(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  if (chunks.length === 0) return null;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

async function serve(environment: FrontEnvironment): Promise<void> {
  // Each bus connection is made at its first use (as in the ninth session's runs: the starts' one
  // after the bench's own connections).
  const starter = new Lazy(() => BareStarter.connect(environment));
  const stopper = new Lazy(() => BareUnits.connect(environment));
  let stopsUnderWay = 0;
  // Its bus connections would try to reconnect to a private system that is gone: it exits (the
  // process's end closes them).
  process.once('SIGTERM', () => process.exit(0));
  // The bench gone without a word: its end of stdin closes.
  process.stdin.once('end', () => process.exit(0));
  process.stdin.resume();
  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>> = {
    'GET /healthz': async (_request, response) => answer(response, 200, {}),
    'POST /start': async (_request, response) => {
      answer(response, 201, { unit: await (await starter.get()).start('full', 'bench-sleep-60', environment.follows) });
    },
    'POST /start-ending': async (_request, response) => {
      answer(response, 201, { unit: await (await starter.get()).start('full', 'bench-sleep', true) });
    },
    'POST /stop': async (request, response) => {
      const body = await bodyOf(request);
      const unit = typeof body === 'object' && body !== null ? (body as { unit?: unknown }).unit : undefined;
      if (typeof unit !== 'string' || !BARE_STOP_UNIT.test(unit)) {
        answer(response, 400, { detail: 'a JSON body {unit} naming a bare stop unit' });
        return;
      }
      stopsUnderWay += 1;
      try {
        await (await stopper.get()).stop(unit);
      } finally {
        stopsUnderWay -= 1;
      }
      answer(response, 200, { state: 'exited' });
    },
    // After the stops: the stops' connection, which every job's end would wake, is closed.
    'POST /stops-done': async (_request, response) => {
      if (stopsUnderWay > 0) {
        answer(response, 409, { detail: `${stopsUnderWay} stops are under way` });
        return;
      }
      (await stopper.take()?.catch(() => undefined))?.bus.close();
      answer(response, 200, {});
    },
    'POST /stop-all': async (_request, response) => {
      const made = await starter.get();
      await made.stopAll();
      await made.collectAll();
      answer(response, 200, {});
    },
  };
  // A connection that sends no whole request head within 5 s is closed, checked every second (the
  // bench sends it at once).
  const server = createServer({ headersTimeout: 5_000, connectionsCheckingInterval: 1_000 }, (request, response) => {
    const [first, given = '', ...rest] = (request.url ?? '').split('/');
    const path = first === '' && isSecret(given, environment.secret) ? `/${rest.join('/')}` : '';
    const route = routes[`${request.method ?? ''} ${path}`];
    if (!route) {
      // Without the secret, the connection is not kept: a local user sending requests holds no slot.
      response.setHeader('connection', 'close');
      answer(response, 404, { detail: 'no such route' });
      return;
    }
    route(request, response).catch((error: unknown) => answer(response, 500, { detail: String(error) }));
  });
  server.keepAliveTimeout = 60_000;
  // The bench keeps at most one connection a client (16 in the sustained rounds); other local users
  // reach the port (the secret turns them away; one holding idle connections can still fill these
  // slots, each for up to 6 s, and stop a run: it gains nothing else).
  server.maxConnections = 20;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (typeof address === 'object' && address !== null) process.stdout.write(`${address.port}\n`);
  });
}

// Run as a program (bench/ab.ts spawns it), never as a side effect of importing FRONT_ENV.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const busAddress = process.env[FRONT_ENV.busAddress];
  const root = process.env[FRONT_ENV.root];
  const secret = process.env[FRONT_ENV.secret];
  if (!busAddress || !root || !secret) throw new Error(`set ${FRONT_ENV.busAddress}, ${FRONT_ENV.root} and ${FRONT_ENV.secret}`);
  await serve({ busAddress, root, secret, follows: process.env[FRONT_ENV.follows] === '1' });
}

/** The URL's first segment is the secret: compared in constant time (a local user may time the answers). */
function isSecret(given: string, secret: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
