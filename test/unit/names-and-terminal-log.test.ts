/** The task unit namespace is disjoint from the runner's own units; the runner's terminal log reads as text. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runnerLogLine } from '../../src/embedded/runner-log.js';
import { isTaskUnit, TASK_UNIT_GLOB, taskIdOf, unitNameOf } from '../../src/tasks/unit-names.js';

/** fnmatch(3) as systemd's ListUnitsByPatterns applies TASK_UNIT_GLOB: `[…]` classes and literals only. */
function globMatches(glob: string, name: string): boolean {
  const pattern = glob.replace(/[.]/g, '\\.').replace(/\*/g, '.*');
  return new RegExp(`^${pattern}$`).test(name);
}

describe('task unit names', () => {
  const ours = ['tessia-task-runner.service', 'tessia-task-runner-starter.service', 'tessia-task-runner.socket', 'tessia-tasks.slice'];

  it('leaves the runner’s own units out of the task namespace, by the pattern and by the glob.', () => {
    for (const unit of ours) {
      assert.equal(isTaskUnit(unit), false, unit);
      assert.equal(taskIdOf(unit), null, unit);
      assert.equal(globMatches(TASK_UNIT_GLOB, unit), false, unit);
    }
  });

  it('names a task’s unit from its id and reads the id back, for the pattern and the glob alike.', () => {
    const unit = unitNameOf('3f9c2a1b');
    assert.equal(unit, 'tessia-task-3f9c2a1b.service');
    assert.equal(taskIdOf(unit), '3f9c2a1b');
    assert.ok(isTaskUnit(unit));
    assert.ok(globMatches(TASK_UNIT_GLOB, unit));
    assert.throws(() => unitNameOf('runner'), /not a task id/);
  });
});

describe('the runner’s log in a terminal (npm start)', () => {
  const entry = (fields: Record<string, unknown>) =>
    JSON.stringify({ __REALTIME_TIMESTAMP: String(Date.UTC(2026, 10, 28, 15, 4, 5, 123) * 1000), ...fields });

  it('shows time, level, message and the task id, without the journal’s own fields.', () => {
    const line = runnerLogLine(
      entry({ PRIORITY: '4', MESSAGE: 'task started', TESSIA_TASK_ID: '3f9c2a1b', _PID: '42', SYSLOG_IDENTIFIER: 'tessia-task-runner' }),
    );
    assert.equal(line, '15:04:05.123 WARNING task started  task=3f9c2a1b');
  });

  it('takes journald’s default priority for an entry without one, and skips what is not JSON.', () => {
    assert.equal(runnerLogLine(entry({ MESSAGE: 'hello' })), '15:04:05.123 INFO    hello');
    assert.equal(runnerLogLine('-- No entries --'), null);
  });
});
