/**
 * A node:test reporter beside TAP: each failed test with its file and what it threw, for test/run.ts
 * to print again at the very end of the run. In TAP a failure sits among thousands of lines, and a
 * CI that keeps only a log's end never shows it. Plain JavaScript: node 20's runner process, which
 * loads reporters, does not run `--import tsx`.
 */

/** Lines of a failure's error kept: its message and where it was thrown, node's own frames left out. */
const ERROR_LINES = 12;
/** A test file's last lines on stderr kept, for a file that failed as a whole (it did not load, it crashed). */
const STDERR_LINES = 15;
const NODE_FRAME = /^\s*at .*\(?node:/;

/**
 * @param {string} text
 * @param {number} count the last lines kept
 */
function ownLines(text, count) {
  return text
    .split('\n')
    .filter((line) => !NODE_FRAME.test(line))
    .slice(-count);
}

/**
 * One failure: which test, where, and the first lines of what it threw (node:test wraps that in an
 * error of its own, with the thrown one as its cause). A whole file's failure (exitCode set) has no
 * cause: what it printed on stderr says why.
 * @param {{ name: string, file?: string, details: { error: Error & { cause?: unknown, exitCode?: number | null, signal?: string | null } } }} failure
 * @param {string[]} stderr the file's last lines on stderr
 */
function describeFailure(failure, stderr) {
  const { error } = failure.details;
  const lines = [`✖ ${failure.name}`, `  in ${failure.file ?? '(no file)'}`];
  if (error.exitCode !== undefined) {
    lines.push(
      `    the file's process ended with ${error.signal ? `signal ${error.signal}` : `exit code ${error.exitCode}`}; its last lines on stderr:`,
    );
    lines.push(...stderr.map((line) => `      ${line}`));
  } else {
    const thrown = error.cause ?? error;
    const text = thrown instanceof Error ? (thrown.stack ?? `${thrown.name}: ${thrown.message}`) : String(thrown);
    // A hook's failure: node's own message ("failed running before hook") says which.
    if (error.cause !== undefined && error.failureType === 'hookFailed') lines.push(`    ${error.message}`);
    lines.push(
      ...ownLines(text, Infinity)
        .slice(0, ERROR_LINES)
        .map((line) => `    ${line}`),
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * The reporter. Left out: a suite that failed only through its tests (they are reported), and a
 * failing todo test (it does not fail the run).
 * @param {AsyncIterable<{ type: string, data: any }>} source
 */
export default async function* failureReport(source) {
  /** @type {Map<string, string[]>} */
  const stderrByFile = new Map();
  for await (const event of source) {
    if (event.type === 'test:stderr' && event.data.file) {
      const kept = stderrByFile.get(event.data.file) ?? [];
      kept.push(...ownLines(String(event.data.message).trimEnd(), STDERR_LINES));
      stderrByFile.set(event.data.file, kept.slice(-STDERR_LINES));
    }
    if (event.type !== 'test:fail' || event.data.todo || event.data.details.error.failureType === 'subtestsFailed') continue;
    yield describeFailure(event.data, stderrByFile.get(event.data.file) ?? []);
  }
}
