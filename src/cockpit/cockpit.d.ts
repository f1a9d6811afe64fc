/** The part of Cockpit's cockpit.js (../base1/cockpit.js, a global) this page uses. */

/** What a failed cockpit.http request rejects with: a transport problem, or an HTTP status. */
interface CockpitHttpError {
  /** "not-found", "access-denied", "disconnected", …; null for an HTTP error status. */
  problem: string | null;
  status?: number;
  reason?: string;
  message: string;
}

/** cockpit.js's own promise: a rejection's handler gets the response body as a second argument. */
interface CockpitHttpRequest extends PromiseLike<string> {
  /** Calls back with each block of a 2xx response; returns how much of it was used (the rest comes again). */
  stream(callback: (data: string) => number | undefined): CockpitHttpRequest;
  /** Calls back with the response's status and headers once they are in. */
  response(callback: (status: number, headers: Record<string, string>) => void): CockpitHttpRequest;
  catch(callback: (error: unknown, body?: string) => void): PromiseLike<unknown>;
  close(problem?: string): void;
}

interface CockpitHttpClient {
  request(options: { method: string; path: string; body: string; headers?: Record<string, string> }): CockpitHttpRequest;
}

interface CockpitLocation {
  readonly path: string[];
  readonly options: Record<string, string>;
  go(path: string[] | string, options?: Record<string, string>): void;
}

interface Cockpit {
  http(endpoint: string, options: { superuser?: 'try' | 'require' }): CockpitHttpClient;
  readonly location: CockpitLocation;
  jump(path: string, host?: string): void;
  /** Filled in by ../manifests.js: each package's manifest, with its overrides. */
  readonly manifests: Record<string, { config?: Record<string, unknown> } | undefined>;
  addEventListener(event: 'locationchanged' | 'visibilitychange', listener: () => void): void;
  removeEventListener(event: 'locationchanged' | 'visibilitychange', listener: () => void): void;
  readonly hidden: boolean;
}

declare const cockpit: Cockpit;
