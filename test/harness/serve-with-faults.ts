/**
 * A test-only entry point: `tessia-task-runner serve` that dies by SIGKILL at the step named by
 * TESSIA_FAULT (a start's after-record | after-start, a delete's after-forget, an event's after-event), to prove recovery,
 * or that fills its state directory's file system right after a start's record (fill-after-record: the
 * unit starts, the store refuses its next state). The shipped entry point has no such switch.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
// The built runner, as the shipped entry point runs it (built-in machines are found next to it).
import { serve } from '../../dist/cli/serve.js';
import type { StartHooks } from '../../dist/server.js';

const die = () => process.kill(process.pid, 'SIGKILL');

/** The file fill-after-record writes in the state directory (FAULT_FILLER of test-runner.ts): removing it frees the space. */
const FAULT_FILLER = 'fault-filler';

/** Writes FAULT_FILLER in the state directory until its file system has no byte left. */
const fill = () => {
  const { values } = parseArgs({ args: process.argv.slice(3), options: { 'state-dir': { type: 'string' } }, strict: false });
  const fd = openSync(join(String(values['state-dir']), FAULT_FILLER), 'a');
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const chunk = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
};
const HOOKS: Record<string, StartHooks> = {
  'after-record': { afterRecord: die },
  'after-start': { afterStart: die },
  'after-forget': { afterForget: die },
  'fill-after-record': { afterRecord: fill },
  // The "created" event of a task the API starts is written; no subscriber has it yet.
  'after-event': { afterEvent: (event) => (event.state === 'created' && !event.recovered ? die() : undefined) },
};

const fault = process.env['TESSIA_FAULT'] ?? '';
const hooks = HOOKS[fault];
if (!hooks) {
  process.stderr.write(`TESSIA_FAULT: unknown fault point "${fault}" (${Object.keys(HOOKS).join(', ')})\n`);
  process.exit(2);
}
await serve(process.argv.slice(3), hooks);
