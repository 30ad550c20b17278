import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GENERATED_FILES,
  PLUGIN_DIR,
  PLUGIN_LINE,
  planConftest,
  readHeader,
  renderFile,
  TEMPLATE_VERSION,
  writePytestFiles,
} from '../../packages/cli/src/setup/pytest-files.js';
import { TestSandbox } from '../support/processes.js';
import { EXAMPLE, PYTHON } from './helpers.js';

const headerFor = (version: number, body: string) =>
  `# seq-test-generated: version=${version} sha256=${createHash('sha256').update(body).digest('hex')} (old)\n`;

describe('writePytestFiles (packages/cli/src/setup/pytest-files.ts: what `seq-test init --pytest` writes)', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const project = (name = 'p') => {
    const dir = join(sandbox.dir, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const actions = (result: ReturnType<typeof writePytestFiles>) =>
    Object.fromEntries(result.changes.map((c) => [c.path.split('/').pop(), c.action]));

  it('creates the modules (in one directory, seq_test_pytest/) and a conftest.py, then leaves them alone', () => {
    sandbox = new TestSandbox();
    const dir = project();
    const first = writePytestFiles(dir);
    expect(actions(first)).toEqual({
      'seq_test_lock.py': 'create',
      'seq_subprocess.py': 'create',
      'seq_test_plugin.py': 'create',
      '__init__.py': 'create',
      'conftest.py': 'create',
    });
    expect(first.changes.map((c) => c.path.slice(dir.length + 1)).filter((p) => p !== 'conftest.py')).toEqual(
      GENERATED_FILES.map((name) => `${PLUGIN_DIR}/${name}`),
    );
    expect(first.complete).toBe(true);
    for (const name of GENERATED_FILES) {
      const text = readFileSync(join(dir, PLUGIN_DIR, name), 'utf8');
      expect(readHeader(text)).toMatchObject({ version: TEMPLATE_VERSION, intact: true });
    }
    expect(readFileSync(join(dir, 'conftest.py'), 'utf8')).toContain(`\n${PLUGIN_LINE}\n`);
    expect(Object.values(actions(writePytestFiles(dir)))).toEqual(Array(5).fill('unchanged'));
  });

  it('upgrades intact older files in place; never clobbers edited, foreign or newer ones without force', () => {
    sandbox = new TestSandbox();
    const dir = project();
    writePytestFiles(dir);
    const old = 'print("old")\n';
    writeFileSync(join(dir, PLUGIN_DIR, 'seq_test_lock.py'), headerFor(TEMPLATE_VERSION - 1, old) + old);
    const edited = `${readFileSync(join(dir, PLUGIN_DIR, 'seq_subprocess.py'), 'utf8')}\n# my local tweak\n`;
    writeFileSync(join(dir, PLUGIN_DIR, 'seq_subprocess.py'), edited);
    const newer = 'print("from the future")\n';
    writeFileSync(join(dir, PLUGIN_DIR, 'seq_test_plugin.py'), headerFor(TEMPLATE_VERSION + 1, newer) + newer);
    const result = writePytestFiles(dir);
    expect(actions(result)).toMatchObject({
      'seq_test_lock.py': 'upgrade',
      'seq_subprocess.py': 'skip',
      'seq_test_plugin.py': 'skip',
    });
    expect(result.changes[0]).toMatchObject({
      from: TEMPLATE_VERSION - 1,
      reason: `from template version ${TEMPLATE_VERSION - 1} to ${TEMPLATE_VERSION}`,
    });
    expect(readFileSync(join(dir, PLUGIN_DIR, 'seq_test_lock.py'), 'utf8')).toBe(renderFile('seq_test_lock.py'));
    expect(readFileSync(join(dir, PLUGIN_DIR, 'seq_subprocess.py'), 'utf8')).toBe(edited);
    expect(result.complete).toBe(false);
    expect(result.manual.join('\n')).toMatch(/edited by hand.*use force/);
    expect(result.manual.join('\n')).toContain(
      `newer seq-test (version ${TEMPLATE_VERSION + 1}; this is ${TEMPLATE_VERSION})`,
    );
    const forced = writePytestFiles(dir, { force: true });
    expect(actions(forced)).toMatchObject({ 'seq_subprocess.py': 'overwrite', 'seq_test_plugin.py': 'overwrite' });
    for (const name of GENERATED_FILES)
      expect(readFileSync(join(dir, PLUGIN_DIR, name), 'utf8')).toBe(renderFile(name));
  });

  it('a same-named module without our header is the user’s: skipped', () => {
    sandbox = new TestSandbox();
    const dir = project();
    mkdirSync(join(dir, PLUGIN_DIR));
    writeFileSync(join(dir, PLUGIN_DIR, 'seq_subprocess.py'), 'def run(): pass\n');
    const result = writePytestFiles(dir);
    expect(actions(result)['seq_subprocess.py']).toBe('skip');
    expect(result.manual[0]).toMatch(/no seq-test header/);
    expect(readFileSync(join(dir, PLUGIN_DIR, 'seq_subprocess.py'), 'utf8')).toBe('def run(): pass\n');
  });

  it('a generated file with Windows line endings still counts as intact', () => {
    sandbox = new TestSandbox();
    const dir = project();
    writePytestFiles(dir);
    const path = join(dir, PLUGIN_DIR, 'seq_test_lock.py');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/\n/g, '\r\n'));
    expect(readHeader(readFileSync(path, 'utf8'))?.intact).toBe(true);
    expect(actions(writePytestFiles(dir))['seq_test_lock.py']).not.toBe('skip');
  });

  it('dry run reports and writes nothing', () => {
    sandbox = new TestSandbox();
    const dir = project();
    const result = writePytestFiles(dir, { dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.changes.every((c) => c.action === 'create' && typeof c.content === 'string')).toBe(true);
    for (const c of result.changes) expect(existsSync(c.path)).toBe(false);
    expect(() => writePytestFiles(join(dir, 'missing'))).toThrow(/is not a directory/);
  });

  it('adds the plugin to an existing conftest.py, or says exactly what to add', () => {
    const plugin = '"seq_test_pytest"';
    const cases: [string, string, string | RegExp][] = [
      ['import pytest\n', 'edit', `import pytest\n\n${PLUGIN_LINE}  #`],
      ['import pytest', 'edit', `import pytest\n\n${PLUGIN_LINE}  #`],
      ['pytest_plugins = ["a", "b"]\n', 'edit', `pytest_plugins = ["a", "b", ${plugin}]\n`],
      ['pytest_plugins = ["a",]\n', 'edit', `pytest_plugins = ["a", ${plugin}]\n`],
      ['pytest_plugins = []\n', 'edit', `pytest_plugins = [${plugin}]\n`],
      ['pytest_plugins = ()\n', 'edit', `pytest_plugins = (${plugin},)\n`],
      ["pytest_plugins: list[str] = ['a']\n", 'edit', `pytest_plugins: list[str] = ['a', ${plugin}]\n`],
      ['pytest_plugins = [\n    "a",\n    "b",  # why\n]\n', 'edit', `    "b",  # why\n    ${plugin},\n]\n`],
      ['pytest_plugins = [\n    "a",\n    "b"\n]\n', 'manual', 'pytest_plugins = [*pytest_plugins, "seq_test_pytest"]'],
      ['pytest_plugins = "a,b"\n', 'manual', 'pytest_plugins = pytest_plugins.split(",") + ["seq_test_pytest"]'],
      ['pytest_plugins = ["a"]\npytest_plugins += ["b"]\n', 'manual', /append this line/],
      ['pytest_plugins = get_plugins()\n', 'manual', 'pytest_plugins = [*pytest_plugins, "seq_test_pytest"]'],
      ['pytest_plugins = ["seq_test_plugin", "a"]\n', 'unchanged', ''],
      ["# pytest_plugins = ['seq_test_plugin']\n", 'edit', PLUGIN_LINE],
    ];
    for (const [before, action, expected] of cases) {
      const plan = planConftest(before);
      expect(plan.action, before).toBe(action);
      if (action === 'edit') expect(plan.content, before).toContain(expected);
      if (action === 'manual') expect(plan.reason, before).toMatch(expected);
    }
  });

  // Without a Python with pytest on PATH this one skips; the global setup has printed one line saying so.
  it.skipIf(PYTHON === null)(
    'an edited conftest with its own pytest_plugins loads both plugins under real pytest',
    async () => {
      sandbox = new TestSandbox();
      const dir = project();
      writeFileSync(join(dir, 'pytest.ini'), '[pytest]\n');
      writeFileSync(join(dir, 'myplugin.py'), 'import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n');
      writeFileSync(join(dir, 'conftest.py'), 'pytest_plugins = [\n    "myplugin",\n]\n');
      writeFileSync(join(dir, 'test_both.py'), 'def test_answer(answer):\n    assert answer == 42\n');
      const result = writePytestFiles(dir);
      expect(result.complete).toBe(true);
      const run = await sandbox.run(['-m', 'pytest', '-p', 'no:cacheprovider'], {
        file: PYTHON!.path,
        cwd: dir,
        // SEQ_TEST_VERBOSE: the header says the lock was held even though nothing else happened.
        env: { PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1', PYTHONDONTWRITEBYTECODE: '1', SEQ_TEST_VERBOSE: '1' },
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^seq-test: lock on .* held/m);
      expect(run.stdout).toMatch(/1 passed/);
    },
    120_000,
  );

  it('examples/pytest carries the current generated files (regenerate with writePytestFiles)', () => {
    sandbox = new TestSandbox();
    const result = writePytestFiles(EXAMPLE, { dryRun: true });
    expect(
      result.changes.map((c) => [c.path.split('/').pop(), c.action]),
      "run: npm run build && node -e \"import('seq-test').then(m => m.writePytestFiles('examples/pytest'))\"",
    ).toEqual([
      ['seq_test_lock.py', 'unchanged'],
      ['seq_subprocess.py', 'unchanged'],
      ['seq_test_plugin.py', 'unchanged'],
      ['conftest.py', 'unchanged'],
    ]);
  });
});
