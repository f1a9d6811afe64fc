/** The runner's side of the starter's socket, against a stand-in starter: what each kind of answer means. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StarterClient, StarterError } from '../../src/starter/client.js';
import { DISCONNECTED, SystemdError } from '../../src/systemd/client.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-starter-client-'));
after(() => rmSync(directory, { recursive: true, force: true }));

/** A starter that answers every request with `error` (name, message), and records the requests. */
async function starterAnswering(name: string, error: { name: string; message: string }) {
  const path = join(directory, `${name}.sock`);
  const requests: Record<string, unknown>[] = [];
  const server = createServer((socket) => {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        const request = JSON.parse(line) as { id: number };
        requests.push(request);
        socket.write(`${JSON.stringify({ id: request.id, error })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('StarterClient', () => {
  it('sends the digest of the settings in force with each request', async () => {
    const starter = await starterAnswering('digest', { name: 'tessia.Starter.UnknownMachine', message: 'unknown machine "x"' });
    const client = new StarterClient(starter.path, () => 'a'.repeat(64));
    await assert.rejects(client.start({ taskId: '0000000a', machine: 'x', parameters: [] }), StarterError);
    assert.equal(starter.requests[0]?.['settings'], 'a'.repeat(64));
    client.close();
    await starter.close();
  });

  it("takes the starter's loss of systemd mid-start (NoReply, Disconnected) for an outcome not known, not a failure", async () => {
    for (const name of ['org.freedesktop.DBus.Error.NoReply', DISCONNECTED]) {
      const starter = await starterAnswering(name.split('.').at(-1) ?? name, { name, message: 'no answer' });
      const client = new StarterClient(starter.path, () => 'b'.repeat(64));
      await assert.rejects(client.start({ taskId: '0000000b', machine: 'echo', parameters: [] }), (error: unknown) => {
        assert.ok(error instanceof SystemdError, String(error));
        assert.equal(error.dbusName, DISCONNECTED);
        return true;
      });
      client.close();
      await starter.close();
    }
  });

  it('passes on a refusal of systemd as what it is', async () => {
    const name = 'org.freedesktop.systemd1.UnitExists';
    const starter = await starterAnswering('exists', { name, message: 'unit exists' });
    const client = new StarterClient(starter.path, () => 'c'.repeat(64));
    await assert.rejects(client.start({ taskId: '0000000c', machine: 'echo', parameters: [] }), (error: unknown) => {
      assert.ok(error instanceof StarterError);
      assert.equal(error.errorName, name);
      return true;
    });
    client.close();
    await starter.close();
  });

  it("sends a unit action without settings, and gives systemd's refusal of it as a SystemdError with its name, the starter's as a StarterError", async () => {
    const name = 'org.freedesktop.systemd1.NoSuchUnit';
    const starter = await starterAnswering('unit', { name, message: 'not loaded' });
    const client = new StarterClient(starter.path, () => 'd'.repeat(64));
    await assert.rejects(client.controlUnit('stop', '0000000d'), (error: unknown) => {
      assert.ok(error instanceof SystemdError, String(error));
      assert.equal(error.dbusName, name);
      return true;
    });
    assert.deepEqual(starter.requests[0], { id: 1, op: 'unit', action: 'stop', taskId: '0000000d' });
    client.close();
    await starter.close();
    const busy = await starterAnswering('busy', { name: 'tessia.Starter.Busy', message: 'busy' });
    const second = new StarterClient(busy.path, () => 'd'.repeat(64));
    await assert.rejects(second.controlUnit('kill', '0000000e'), StarterError);
    second.close();
    await busy.close();
  });
});
