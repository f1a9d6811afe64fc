/**
 * A test-only entry point: `tessia-task-runner serve` that dies by SIGKILL at the step named by
 * TESSIA_FAULT (a start's after-record | after-start, a delete's after-forget, an event's after-event), to prove recovery. The shipped entry point has no
 * such switch.
 */
// The built runner, as the shipped entry point runs it (built-in machines are found next to it).
import { serve } from '../../dist/cli/serve.js';
import type { StartHooks } from '../../dist/server.js';

const die = () => process.kill(process.pid, 'SIGKILL');
const HOOKS: Record<string, StartHooks> = {
  'after-record': { afterRecord: die },
  'after-start': { afterStart: die },
  'after-forget': { afterForget: die },
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
