/**
 * A node:test reporter beside TAP: each failed test with its file and what it threw, for test/run.ts
 * to print again at the very end of the run. In TAP a failure sits among thousands of lines, and a
 * CI that keeps only a log's end never shows it. Plain JavaScript: node loads reporters before
 * `--import tsx` takes effect.
 */

/** Lines of a failure's error kept: its message and where it was thrown, node's own frames left out. */
const ERROR_LINES = 12;
const NODE_FRAME = /^\s*at .*\(?node:/;

/**
 * One failure: which test, where, and the first lines of what it threw (node:test wraps that in an
 * error of its own, with the thrown one as its cause).
 * @param {{ name: string, file?: string, details: { error: Error & { cause?: unknown } } }} failure
 */
function describeFailure(failure) {
  const thrown = failure.details.error.cause ?? failure.details.error;
  const text = thrown instanceof Error ? (thrown.stack ?? `${thrown.name}: ${thrown.message}`) : String(thrown);
  const lines = text
    .split('\n')
    .filter((line) => !NODE_FRAME.test(line))
    .slice(0, ERROR_LINES);
  // Not the test's line: under tsx it is the transpiled file's.
  return [`✖ ${failure.name}`, `  in ${failure.file ?? '(no file)'}`, ...lines.map((line) => `    ${line}`)].join('\n') + '\n';
}

/**
 * The reporter. A suite that failed only through its subtests is left out: they are reported.
 * @param {AsyncIterable<{ type: string, data: any }>} source
 */
export default async function* failureReport(source) {
  for await (const event of source) {
    if (event.type === 'test:fail' && event.data.details.error.failureType !== 'subtestsFailed') yield describeFailure(event.data);
  }
}
