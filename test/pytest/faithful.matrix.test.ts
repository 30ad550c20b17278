import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { describePython } from '../support/python.js';
import { faithfulPytest } from './faithful-suite.js';
import { PYTHONS } from './helpers.js';

// The faithful suite (faithful-suite.ts) under every Python with pytest the matrix tier found (pytest 7 with
// pytest-xdist, pytest 9, …): plain (with -n 2 where xdist is installed) and under the plugin, the same results.
const WITH_PYTEST = PYTHONS.filter((python) => python.pytest);

describe.skipIf(WITH_PYTEST.length === 0)('the faithful suite under the pytest plugin, every Python', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it.each(WITH_PYTEST.map((python) => [describePython(python), python] as const))(
    '%s',
    async (_label, python) => {
      sandbox = new TestSandbox();
      await faithfulPytest(sandbox, python);
    },
    300_000,
  );
});
