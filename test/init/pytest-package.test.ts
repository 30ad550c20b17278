import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { Fixture, problems } from './helpers.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

// Installing the built wheel with pip is in pytest-wheel.matrix.test.ts (the matrix tier).
describe('the packaged pytest plugin (seq-test-pytest)', () => {
  it('init --pytest vendors it into seq_test_pytest/ and says so; the prompt-free summary is one line, not the files', async () => {
    sandbox = new TestSandbox();
    const repo = new Fixture(sandbox, join(sandbox.dir, 'py')).initRepo();
    repo.write({ 'pytest.ini': '[pytest]\n', 'test_app.py': 'def test_app():\n    assert True\n' });
    repo.commitAll();
    const init = await repo.cli(['init', '--pytest']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('vendor the plugin: seq_test_pytest/ (4 generated files, stdlib only)');
    expect(init.stdout.split('\n').length).toBeLessThan(30);
    expect(repo.git(['status', '--porcelain', '--untracked-files=all']).split('\n').sort().filter(Boolean)).toEqual([
      '?? conftest.py',
      '?? seq_test_pytest/__init__.py',
      '?? seq_test_pytest/seq_subprocess.py',
      '?? seq_test_pytest/seq_test_lock.py',
      '?? seq_test_pytest/seq_test_plugin.py',
    ]);
    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout).filter((f) => f.check.startsWith('pytest.'))).toEqual([]);
  });
});
