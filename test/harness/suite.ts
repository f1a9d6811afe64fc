/**
 * The usual frame of an integration suite: a runner of its own for the suite, a client, and every
 * task the suite started stopped and collected at the end (a suite leaves no unit behind).
 */
import { after, before } from 'node:test';
import { client, type Api } from '../../src/embedded/api-client.js';
import type { RunnerService, RunnerServiceOptions } from '../../src/embedded/runner-service.js';
import { cleanUp, startTask } from '../../src/embedded/runner-tasks.js';
import { startTestRunner } from './test-runner.js';

export interface RunnerSuite {
  runner: RunnerService;
  api: Api;
  /** Tasks to stop and collect at the end; drop the ones a test has deleted itself. */
  started: Set<string>;
  start(machine: string, parameters: unknown): ReturnType<typeof startTask>;
}

/** Call inside `describe`. `beforeCleanUp` runs first at the end (e.g. to bring a stopped runner back). */
export function runnerSuite(
  config: Record<string, unknown> = {},
  options: RunnerServiceOptions & { beforeCleanUp?: (suite: RunnerSuite) => Promise<void> } = {},
): RunnerSuite {
  const suite = {
    started: new Set<string>(),
    async start(machine: string, parameters: unknown) {
      const task = await startTask(suite.api, machine, parameters);
      suite.started.add(task.taskId);
      return task;
    },
  } as RunnerSuite;
  before(async () => {
    suite.runner = await startTestRunner(config, options);
    suite.api = client(suite.runner.baseUrl);
  });
  after(async () => {
    // Undefined when before() failed.
    if ((suite.runner as RunnerService | undefined) === undefined) return;
    await options.beforeCleanUp?.(suite);
    await cleanUp(suite.runner, suite.api, suite.started);
    await suite.runner.stop();
  });
  return suite;
}
