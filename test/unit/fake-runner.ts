/**
 * A stand-in for the runner (or a proxy in front of it) on a local port, for testing the `task`
 * commands without systemd: every request is recorded, then answered by the test's script.
 */
import { execFile } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { REPO_DIR } from '../../src/embedded/private-systemd.js';

export interface SeenRequest {
  method: string;
  path: string;
  body: string;
  headers: import('node:http').IncomingHttpHeaders;
}

/** Answers the request numbered `index` (0 for the first one). */
export type Script = (seen: SeenRequest, response: ServerResponse, index: number) => void;

export interface FakeRunner {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** On a local port, or on the Unix socket `socketPath` (then `url` gives only the Host). */
export async function fakeRunner(script: Script, { socketPath }: { socketPath?: string } = {}): Promise<FakeRunner> {
  const requests: SeenRequest[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const seen = { method: request.method ?? '', path: request.url ?? '', body, headers: request.headers };
      requests.push(seen);
      script(seen, response, requests.length - 1);
    });
  });
  if (socketPath !== undefined) await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  else await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 7356}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        // Answers the script holds back on purpose would keep the server open.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** Runs `tessia-task-runner task …` (the build in dist/) without blocking this process, which serves it. */
export function runTaskCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const began = performance.now();
  const inherited = { ...process.env };
  for (const name of [
    'TESSIA_RUNNER_URL',
    'TESSIA_RUNNER_SOCKET',
    'TESSIA_RUNNER_TOKEN',
    'TESSIA_RUNNER_TOKEN_FILE',
    'TESSIA_RUNNER_TIMEOUT',
  ])
    delete inherited[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_DIR, 'dist/cli/main.js'), 'task', ...args],
      { encoding: 'utf8', timeout: 40_000, env: { ...inherited, NO_COLOR: '1', ...env } },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          stdout,
          stderr,
          elapsedMs: performance.now() - began,
        }),
    );
  });
}
