/** The starter's side of its socket against a stand-in for the unit starter: what is refused as busy, and when. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { StarterServer } from '../../src/starter/server.js';
import type { TaskUnitStarter } from '../../src/starter/task-unit-starter.js';

const directory = mkdtempSync(join(tmpdir(), 'tessia-starter-server-'));
after(() => rmSync(directory, { recursive: true, force: true }));

describe('StarterServer', () => {
  it('refuses unit actions beyond their own cap as busy, and still takes starts then', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const acted: string[] = [];
    const unitStarter = {
      async controlUnit(action: string, taskId: string) {
        acted.push(`${action} ${taskId}`);
        await held;
      },
      async start() {
        return 'done';
      },
    } as unknown as TaskUnitStarter;
    const server = new StarterServer(
      unitStarter,
      { maxParameterBytes: () => 1024, maxInFlight: 3, maxChecksInFlight: 1, maxUnitActionsInFlight: 2 },
      pino({ level: 'silent' }),
    );
    const path = join(directory, 'starter.sock');
    const listener = createServer();
    server.serve(listener);
    await new Promise<void>((resolve) => listener.listen(path, resolve));
    const socket = createConnection(path);
    try {
      const answers: { id: number; [key: string]: unknown }[] = [];
      createInterface({ input: socket }).on('line', (line) => answers.push(JSON.parse(line) as { id: number }));
      const send = (request: object) => socket.write(`${JSON.stringify(request)}\n`);
      for (const [id, taskId] of [
        [1, '0000000a'],
        [2, '0000000b'],
        [3, '0000000c'],
      ] as const)
        send({ id, op: 'unit', action: 'stop', taskId });
      send({ id: 4, taskId: '0000000d', machine: 'echo', parameters: null, settings: 'e'.repeat(64) });
      const until = async (count: number) => {
        for (let i = 0; i < 200 && answers.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      };
      await until(2);
      assert.deepEqual(answers.map((answer) => answer.id).sort(), [3, 4]);
      assert.deepEqual((answers.find((answer) => answer.id === 3)?.['error'] as { name: string }).name, 'tessia.Starter.Busy');
      assert.deepEqual(
        answers.find((answer) => answer.id === 4),
        { id: 4, result: 'done' },
      );
      release();
      await until(4);
      assert.deepEqual(
        answers.filter((answer) => answer.id <= 2),
        [
          { id: 1, done: true },
          { id: 2, done: true },
        ],
      );
      assert.deepEqual(acted, ['stop 0000000a', 'stop 0000000b']);
    } finally {
      release();
      socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});
