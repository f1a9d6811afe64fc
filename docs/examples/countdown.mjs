#!/usr/bin/env node
/**
 * The countdown machine in JavaScript: parameters {"from": seconds, "message": text}, on stdin.
 *   run:   node countdown.mjs          (exec: [/usr/bin/node, /path/countdown.mjs])
 *   check: node countdown.mjs --check  (check: [/usr/bin/node, /path/countdown.mjs, --check])
 * Entries go through the runner's SDK: journald's native protocol with fields of their own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The parameters, or a one-line reason why they are not valid. */
function parse(parameters) {
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    return { error: 'parameters must be an object: {"from": seconds, "message": text}' };
  }
  const { from, message = 'liftoff', ...unknown } = parameters;
  if (Object.keys(unknown).length > 0) return { error: `unknown parameters: ${Object.keys(unknown).join(', ')}` };
  if (!Number.isInteger(from) || from < 1 || from > 3600) return { error: '"from" must be a whole number of seconds from 1 to 3600' };
  if (typeof message !== 'string' || message.length > 200) return { error: '"message" must be text of at most 200 characters' };
  return { from, message };
}

if (process.argv.includes('--check')) {
  // The check's verdict: its exit status, and the last line on stderr when it says no. Node exits
  // 1 on an uncaught error, which would read as "invalid": anything unexpected is 125 instead.
  try {
    const parsed = parse(JSON.parse(readFileSync(0, 'utf8')));
    if (parsed.error) process.stderr.write(`${parsed.error}\n`);
    process.exit(parsed.error ? 1 : 0);
  } catch (error) {
    process.stderr.write(`the check failed: ${error.message}\n`);
    process.exit(125);
  }
}

// The task: the runner's SDK for journal entries with fields of their own.
const { createTaskLog, readParameters } = await import('tessia-task-runner/sdk');
const parsed = parse(readParameters());
if (parsed.error) throw new Error(parsed.error);
const log = createTaskLog();
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
let left = parsed.from;
log.write('info', `counting down from ${left}`, { COUNTDOWN_FROM: left });
try {
  for (; left > 0; left--) {
    log.write('info', `T-minus ${left}`, { COUNTDOWN_LEFT: left });
    await sleep(1000, undefined, { signal: stop.signal });
  }
  log.write('notice', parsed.message);
  writeFileSync('result.json', `${JSON.stringify({ completed: true, left: 0 })}\n`);
} catch (error) {
  if (!stop.signal.aborted) throw error;
  // A stop (or the runtime limit): clean up within the machine's stopGraceSec.
  log.write('warning', `stopped with ${left} seconds left: cleaning up`, { COUNTDOWN_LEFT: left });
  writeFileSync('result.json', `${JSON.stringify({ completed: false, left })}\n`);
  await log.flush();
  process.exit(143);
}
