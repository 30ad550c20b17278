import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython } from '../support/python.js';
import { bridgeSuite, PYTHON } from './helpers.js';

/**
 * The bridge's own Python tests under the Python on PATH (the default tier). Every other interpreter found
 * is the matrix tier's: python-suites.matrix.test.ts. Without a Python with pytest on PATH this file skips,
 * and the global setup has printed one line saying so.
 */
describe.skipIf(PYTHON === null)('pytest bridge: its Python test suite under the Python on PATH', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it(`${PYTHON ? describePython(PYTHON) : 'no Python with pytest'}`, async () => {
    sandbox = new TestSandbox();
    console.log(`${describePython(PYTHON!)}: ${await bridgeSuite(sandbox, PYTHON!)}`);
  }, 600_000);
});
