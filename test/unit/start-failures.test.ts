import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeStartFailure } from '../../src/systemd/start-failures.js';

describe('describeStartFailure', () => {
  it("names the host's limits when systemd could not set the unit up (Result resources), as at the ceiling of tasks at once.", () => {
    assert.equal(
      describeStartFailure('failed', { result: 'resources', execMainStatus: 0 }),
      "start job failed (resources, status 0): systemd could not set the unit up, a limit of the host is reached (systemd's open files, processes or memory; its journal for the unit says which)",
    );
  });

  it('names the dynamic users when the unit could not take its user (exit status 217).', () => {
    assert.match(
      describeStartFailure('failed', { result: 'exit-code', execMainStatus: 217 }),
      /^start job failed \(exit-code, status 217\): .*4336 dynamic users/,
    );
  });

  it('says only what systemd said otherwise, and when the unit is gone.', () => {
    assert.equal(describeStartFailure('failed', { result: 'exit-code', execMainStatus: 203 }), 'start job failed (exit-code, status 203)');
    assert.equal(describeStartFailure('canceled', null), 'start job canceled (unit gone)');
  });
});
