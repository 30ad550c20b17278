import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython } from '../support/python.js';
import { faithfulPytest } from './faithful-suite.js';
import { PYTHON } from './helpers.js';

// The faithful suite (faithful-suite.ts) under the first Python on PATH with pytest; every Python found in
// faithful.matrix.test.ts. Without a pytest on PATH this file skips (the global setup says so).
describe.skipIf(PYTHON === null)('the faithful suite under the pytest plugin', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it(PYTHON ? describePython(PYTHON) : 'no pytest', async () => {
    sandbox = new TestSandbox();
    await faithfulPytest(sandbox, PYTHON!);
  }, 300_000);
});
