// The seq-test-pytest wheel `npm run build` made, installed with pip and loaded by pytest: a packaging check
// like test/install/, so in the matrix tier (`npm run test:matrix`). Vendoring (init --pytest) is in
// pytest-package.test.ts.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BRIDGE, PYTHON } from '../pytest/helpers.js';
import { TestSandbox } from '../support/processes.js';
import { Fixture, problems } from './helpers.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

/** The wheel `npm run build` made (integrations/pytest/scripts/build-wheel.mjs). */
function wheel(): string | undefined {
  const dist = join(BRIDGE, 'dist');
  const name = existsSync(dist) ? readdirSync(dist).find((f) => f.endsWith('.whl')) : undefined;
  return name ? join(dist, name) : undefined;
}

describe('the packaged pytest plugin (seq-test-pytest), from its wheel', () => {
  // Without a Python with pytest on PATH this skips; the global setup has printed one line saying so.
  it.skipIf(PYTHON === null)(
    'installs from the built wheel with pip offline and loads through its pytest11 entry point; init and doctor accept it',
    async () => {
      sandbox = new TestSandbox();
      const built = wheel();
      expect(
        built,
        'no wheel in integrations/pytest/dist: run npm run build (it needs setuptools and wheel)',
      ).toBeDefined();
      const site = join(sandbox.dir, 'site');
      const install = await sandbox.run(
        ['-m', 'pip', 'install', '--no-index', '--no-deps', '--disable-pip-version-check', '--target', site, built!],
        { file: PYTHON!.path },
      );
      expect(install.code, install.stdout + install.stderr).toBe(0);

      const repo = new Fixture(sandbox, join(sandbox.dir, 'py')).initRepo();
      repo.write({
        'pyproject.toml':
          '[project]\nname = "app"\nversion = "1"\n\n[dependency-groups]\ntest = ["pytest", "seq-test-pytest"]\n\n[tool.pytest.ini_options]\n',
        'test_app.py': 'def test_app():\n    assert True\n',
      });
      repo.commitAll();
      const run = await sandbox.run(['-m', 'pytest', '-p', 'no:cacheprovider'], {
        file: PYTHON!.path,
        cwd: repo.dir,
        env: { PYTHONPATH: site, PYTHONDONTWRITEBYTECODE: '1', SEQ_TEST_VERBOSE: '1' },
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^seq-test: lock on .* held/m);

      const init = await repo.cli(['init', '--pytest']);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toContain('the packaged plugin: seq-test-pytest is declared in pyproject.toml');
      expect(repo.git(['status', '--porcelain'])).toBe('');
      const doctor = await repo.cli(['doctor', '--json']);
      expect(problems(doctor.stdout).filter((f) => f.check.startsWith('pytest.'))).toEqual([]);
    },
    120_000,
  );
});
