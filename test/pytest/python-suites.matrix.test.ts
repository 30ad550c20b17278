import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython, supportedByBridge } from '../support/python.js';
import { bridgeSuite, PYTHONS } from './helpers.js';

/**
 * The bridge's own Python tests (integrations/pytest/tests; a few minutes each on a loaded machine, hence
 * this tier) under every interpreter found (PATH, `pyenv root`, /usr/bin/python3; the global setup prints
 * the list): pytest where it is installed (with pytest-xdist's tests where xdist is), else the stdlib-only
 * modules under unittest. Interpreters older than the bridge supports are listed by the global setup and
 * not run. One interpreter by hand: `cd integrations/pytest && python3 -m pytest tests`.
 */
const supported = PYTHONS.filter(supportedByBridge);

// None at all: the global setup's lines say so, and this file skips.
describe.skipIf(supported.length === 0)('pytest bridge: its Python test suites on every interpreter found', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  for (const python of supported) {
    it(describePython(python), async () => {
      sandbox = new TestSandbox();
      console.log(`${describePython(python)}: ${await bridgeSuite(sandbox, python)}`);
    }, 900_000);
  }
});
