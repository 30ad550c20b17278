import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GENERATED_FILES,
  PLUGIN_DIR,
  PLUGIN_LINE,
  renderFile,
  TEMPLATE_VERSION,
} from '../../packages/cli/src/setup/pytest-files.js';
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

  it('a copy vendored by an older seq-test: doctor names each module and the fix, init --pytest upgrades it, then doctor is quiet', async () => {
    sandbox = new TestSandbox();
    const repo = new Fixture(sandbox, join(sandbox.dir, 'py')).initRepo();
    // As the first published seq-test (template version 1) wrote them: an intact header over an older body.
    const vendored: Record<string, string> = {};
    for (const name of GENERATED_FILES) {
      const body = `# ${name} as template version 1 wrote it\n`;
      const sha256 = createHash('sha256').update(body).digest('hex');
      vendored[`${PLUGIN_DIR}/${name}`] = `# seq-test-generated: version=1 sha256=${sha256} (generated)\n${body}`;
    }
    repo.write({ 'pytest.ini': '[pytest]\n', 'conftest.py': `${PLUGIN_LINE}\n`, ...vendored });
    repo.commitAll();
    // Every release that changed the templates bumped the version: this seq-test's copy is newer than 1.
    expect(TEMPLATE_VERSION).toBeGreaterThan(1);
    const before = problems((await repo.cli(['doctor', '--json'])).stdout).filter((f) => f.check.startsWith('pytest.'));
    expect(before).toEqual(
      Object.keys(vendored).map((file) => ({
        severity: 'warning',
        check: 'pytest.vendored',
        file,
        message: `${file} was written by an older seq-test (template version 1; this one writes ${TEMPLATE_VERSION}): it lacks the fixes and protocol changes since`,
        fix: 'seq-test init --pytest (upgrades it in place)',
      })),
    );
    const init = await repo.cli(['init', '--pytest']);
    expect(init.code, init.stderr).toBe(0);
    for (const file of Object.keys(vendored)) {
      expect(init.stdout).toContain(`upgrade ${file} (from template version 1 to ${TEMPLATE_VERSION})`);
      expect(repo.read(file)).toBe(renderFile(file.slice(PLUGIN_DIR.length + 1)));
    }
    const after = await repo.cli(['doctor', '--json']);
    expect(problems(after.stdout).filter((f) => f.check.startsWith('pytest.'))).toEqual([]);
  });
});
