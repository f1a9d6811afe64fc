/**
 * `node --import tsx bench/write-records.ts STATE_DIR COUNT MACHINE…`: bench/records.ts's
 * writeFinishedTasks, run inside the private system (SQLite resolves /proc/PID/root, a link to "/",
 * so the store cannot be opened from outside through it). Prints what it wrote as JSON.
 */
import { writeFinishedTasks } from './records.js';

const [stateDir, count, ...machines] = process.argv.slice(2);
if (stateDir === undefined || count === undefined || machines.length === 0) {
  throw new Error('usage: write-records.ts STATE_DIR COUNT MACHINE…');
}
process.stdout.write(`${JSON.stringify(writeFinishedTasks(stateDir, Number(count), machines))}\n`);
