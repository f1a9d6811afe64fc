/** The benchmarks run the runner with the package unit's environment, read from the unit itself. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { packageEnvironment } from '../../bench/package-environment.js';

describe('packageEnvironment', () => {
  it("turns the unit's NODE_OPTIONS into node flags and keeps its other variables.", () => {
    const unit = [
      '[Service]',
      '# Environment=NOT=this',
      'Environment=NODE_OPTIONS=--a=1 --b',
      'Environment=MALLOC_ARENA_MAX=2',
      'User=x',
    ].join('\n');
    assert.deepEqual(packageEnvironment(unit), { nodeFlags: ['--a=1', '--b'], env: { MALLOC_ARENA_MAX: '2' } });
  });

  it('reads the shipped unit, which sets node flags.', () => {
    assert.ok(packageEnvironment().nodeFlags.length > 0);
  });
});
