import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython, supportedByBridge } from '../support/python.js';
import { bridgeSuite, PYTHON, PYTHONS } from './helpers.js';

/**
 * The bridge's own Python tests under every other interpreter found (PATH, `pyenv root`, /usr/bin/python3;
 * the global setup prints the list): pytest where it is installed (with pytest-xdist's tests where xdist
 * is), else the stdlib-only modules under unittest. Interpreters older than the bridge supports are listed
 * by the global setup and not run.
 */
const others = PYTHONS.filter((p) => supportedByBridge(p) && p.executable !== PYTHON?.executable);

// None besides the PATH one: the global setup's list shows it, and this file skips.
describe.skipIf(others.length === 0)('pytest bridge: its Python test suites on every other interpreter found', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  for (const python of others) {
    it(describePython(python), async () => {
      sandbox = new TestSandbox();
      console.log(`${describePython(python)}: ${await bridgeSuite(sandbox, python)}`);
    }, 900_000);
  }
});
