/** The runner's long answers (logs) read whole, or line by line as they arrive (followers). */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface StreamReply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Reads a whole (possibly long) response; gunzips it when it came compressed. */
export async function readAll(url: string, headers: Record<string, string> = {}): Promise<StreamReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        let buffer = Buffer.concat(chunks);
        if (response.headers['content-encoding'] === 'gzip') buffer = gunzipSync(buffer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: buffer.toString('utf8') });
      });
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function ndjson(body: string): any[] {
  return body
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

/** Opens a stream and hands each line to `onLine` as it arrives; resolves at the end. */
export function followLines(
  url: string,
  onLine: (line: string, response: IncomingMessage) => void,
  headers: Record<string, string> = {},
): { done: Promise<number>; response: Promise<IncomingMessage>; abort: () => void } {
  let abort = () => {};
  let gotResponse: (response: IncomingMessage) => void = () => {};
  const response = new Promise<IncomingMessage>((resolve) => (gotResponse = resolve));
  let aborted = false;
  const done = new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      gotResponse(res);
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        partial += chunk;
        let at: number;
        while ((at = partial.indexOf('\n')) !== -1) {
          onLine(partial.slice(0, at), res);
          partial = partial.slice(at + 1);
        }
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (error) => (aborted ? resolve(-1) : reject(error)));
    });
    req.on('error', (error) => (aborted ? resolve(-1) : reject(error)));
    abort = () => {
      aborted = true;
      req.destroy();
    };
    req.end();
  });
  return { done, response, abort };
}
