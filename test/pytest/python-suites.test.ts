import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython } from '../support/python.js';
import { ANY_PYTHON, bridgeSuite } from './helpers.js';

/**
 * The bridge's stdlib-only modules (the Python lock and seq_subprocess: tests/test_unit_*.py) under unittest,
 * with the first Python >= 3.8 on PATH: seconds, and no pytest needed. The full suites, under every Python
 * found, are the matrix tier's (python-suites.matrix.test.ts). Without a Python this file skips, and the
 * global setup has printed one line saying so.
 */
describe.skipIf(ANY_PYTHON === null)("pytest bridge: the Python lock's unit tests under the Python on PATH", () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it(ANY_PYTHON ? describePython(ANY_PYTHON) : 'no Python', async () => {
    sandbox = new TestSandbox();
    console.log(`${describePython(ANY_PYTHON!)}: ${await bridgeSuite(sandbox, ANY_PYTHON!, { unitOnly: true })}`);
  }, 300_000);
});
