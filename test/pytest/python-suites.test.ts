import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { BRIDGE, PY, probe, xdistShim } from './helpers.js';

/**
 * Runs the bridge's own Python tests (integrations/pytest/tests) on every interpreter of the tested matrix.
 * Nothing is skipped: a missing interpreter, pytest or pytest-xdist fails with a message saying what to install.
 */
describe('pytest bridge: Python test suites across the matrix', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const pytestSuite = async (python: string, env: NodeJS.ProcessEnv) => {
    const result = await sandbox.run(['-m', 'pytest', 'tests', '-q', '-rs', '-p', 'no:cacheprovider'], {
      file: python,
      cwd: BRIDGE,
      env: { SEQ_TEST_REQUIRE_XDIST: '1', PYTHONDONTWRITEBYTECODE: '1', ...env },
    });
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    const summary = output.trim().split('\n').pop() ?? '';
    expect(summary, output).toMatch(/^\d+ passed in /);
    expect(output).not.toMatch(/\bskipped\b|SKIPPED/);
    return summary;
  };

  const unittestSuite = async (python: string) => {
    const result = await sandbox.run(['-m', 'unittest', 'discover', '-s', 'tests', '-p', 'test_unit_*.py', '-v'], {
      file: python,
      cwd: BRIDGE,
      env: { PYTHONDONTWRITEBYTECODE: '1' },
    });
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    expect(output).toMatch(/^Ran \d+ tests in /m);
    expect(output).toMatch(/^OK$/m);
    expect(output).not.toMatch(/skipped/);
    return /^Ran (\d+) tests/m.exec(output)?.[1];
  };

  it('pyenv Python 3.11 with pytest 9 (pytest-xdist from Debian on PYTHONPATH)', async () => {
    sandbox = new TestSandbox();
    const versions = probe(PY.pyenv311, ['pytest']);
    const shim = xdistShim(sandbox.dir);
    const summary = await pytestSuite(PY.pyenv311, {
      PYTHONPATH: shim,
      // The interpreter's other plugins (hypothesis, benchmark) cost seconds per run and are not under test.
      PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1',
    });
    console.log(`${versions}: ${summary}`);
  }, 900_000);

  it("Debian's Python with python3-pytest (7.x) and python3-pytest-xdist", async () => {
    sandbox = new TestSandbox();
    const versions = probe(PY.debian, ['pytest', 'xdist']);
    const summary = await pytestSuite(PY.debian, {});
    console.log(`${versions}: ${summary}`);
  }, 900_000);

  for (const [name, python] of [
    ['3.8', PY.py38],
    ['3.13', PY.py313],
  ] as const) {
    it(`pyenv Python ${name}: the stdlib-only modules under unittest`, async () => {
      sandbox = new TestSandbox();
      const version = probe(python);
      const ran = await unittestSuite(python);
      console.log(`${version}: ${ran} unittest tests OK (${join('integrations/pytest/tests', 'test_unit_*.py')})`);
    }, 600_000);
  }
});
