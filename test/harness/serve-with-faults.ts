/**
 * A test-only entry point: `tessia-task-runner serve` that dies by SIGKILL at the step named by
 * TESSIA_FAULT (a start's after-record | after-start, a delete's after-forget, an event's after-event), to prove recovery,
 * or that fills its state directory's file system right after a start's record (fill-after-record: the
 * unit starts, the store refuses its next state). The shipped entry point has no such switch.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
// The built runner, as the shipped entry point runs it (built-in machines are found next to it).
import { serve } from '../../dist/cli/serve.js';
import type { StartHooks } from '../../dist/server.js';
import { FAULT_FILLER, fillUntilFull } from './fill-disk.js';

const die = () => process.kill(process.pid, 'SIGKILL');

/** Fills the state directory's file system (FAULT_FILLER in it) to its last byte. */
const fill = () => {
  const { values } = parseArgs({ args: process.argv.slice(3), options: { 'state-dir': { type: 'string' } }, strict: false });
  fillUntilFull(join(String(values['state-dir']), FAULT_FILLER));
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
