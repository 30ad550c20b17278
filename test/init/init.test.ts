import { spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PYTHON } from '../pytest/helpers.js';
import { CLI, REPO, TestSandbox, waitFor } from '../support/processes.js';
import { Fixture, integrationAvailable, problems } from './helpers.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

function fixture(name = 'repo'): Fixture {
  sandbox = new TestSandbox();
  return new Fixture(sandbox, join(sandbox.dir, name));
}

const VITEST_CONFIG = `import { defineConfig } from 'vitest/config';

// Kept: a comment above the config.
export default defineConfig({
  test: {
    environment: 'node', // kept: a trailing comment
    include: ['test/**/*.test.ts'],
  },
});
`;

describe('seq-test init', () => {
  it('in an empty repository: nothing to do, nothing written, doctor clean', async () => {
    const repo = fixture().initRepo();
    const before = repo.snapshot();
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('nothing: no test runner, hook manager or CI configuration found');
    expect(init.stdout).toMatch(/nothing to change|nothing to do/);
    expect(repo.snapshot()).toEqual(before);
    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    expect(doctor.code, doctor.stdout).toBe(0);
  });

  it('without a terminal and without --yes: prints the plan, changes nothing, exits 125 with a clear message', async () => {
    const repo = fixture().initRepo();
    repo.write({
      'package.json': '{\n  "devDependencies": { "vitest": "^4.1.0" }\n}\n',
      'vitest.config.ts': VITEST_CONFIG,
    });
    const before = repo.snapshot();
    const init = await repo.cli(['init']);
    expect(init.code).toBe(125);
    expect(init.stdout).toContain('would change: package.json, vitest.config.ts');
    expect(init.stderr).toMatch(
      /^seq-test: error: no terminal to ask on, so nothing was changed: run `seq-test init --yes`/m,
    );
    expect(repo.snapshot()).toEqual(before);
  });

  it.skipIf(spawnSync('script', ['--version']).status !== 0)(
    'on a terminal: asks, with the steps that fit pre-selected; enter, enter, enter applies them',
    async () => {
      const repo = fixture().initRepo();
      repo.write({
        'package.json': '{\n  "name": "v",\n  "devDependencies": { "vitest": "^4.1.0" }\n}\n',
        'vitest.config.ts': VITEST_CONFIG,
      });
      repo.commitAll();
      // script(1) gives the CLI a pseudo-terminal; each answer is sent once its question is on screen.
      const session = sandbox.start(['-qec', `'${process.execPath}' '${CLI}' init`, '/dev/null'], {
        cwd: repo.dir,
        env: repo.env(),
        file: 'script',
        stdin: 'pipe',
      });
      const escapes = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[a-zA-Z]`, 'g');
      const plain = () => session.output.stdout.replace(escapes, '');
      for (const question of ['Set up', 'Set project defaults', 'Write these 2 file(s)?']) {
        await waitFor(() => plain().includes(question), 30_000, `the question "${question}"`);
        session.child.stdin?.write('\r');
      }
      const done = await session.finished;
      expect(done.code, plain()).toBe(0);
      expect(plain()).toMatch(/◉ Vitest: add the seqTest\(\) plugin/);
      expect(plain()).toMatch(/◯ GitHub Actions/);
      expect(plain()).toContain('updated vitest.config.ts');
      expect(repo.exists('vitest.config.ts.seq-test-backup')).toBe(false);
      expect(repo.read('vitest.config.ts')).toContain('plugins: [seqTest()]');
    },
    60_000,
  );

  it('Vitest: --dry-run prints a unified diff and writes nothing; --yes edits the config (comments kept, no backup litter); a second run is a no-op', async () => {
    const repo = fixture().initRepo();
    repo.write({
      '.gitignore': 'node_modules\n',
      'package.json':
        '{\n  "name": "v",\n  "scripts": { "test": "vitest run" },\n  "devDependencies": { "vitest": "^4.1.0" }\n}\n',
      'vitest.config.ts': VITEST_CONFIG,
      'test/one.test.ts': "import { expect, it } from 'vitest';\nit('runs', () => expect(1).toBe(1));\n",
    });
    repo.commitAll();
    const pristine = repo.snapshot();

    const dry = await repo.cli(['init', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('--- a/vitest.config.ts');
    expect(dry.stdout).toContain('+++ b/vitest.config.ts');
    expect(dry.stdout).toContain("+import { seqTest } from '@seq-test/vitest';");
    expect(dry.stdout).toMatch(/^\+\s+plugins: \[seqTest\(\)\],$/m);
    expect(dry.stdout).toContain('dry run: 2 file(s) would change; nothing was written');
    expect(repo.snapshot()).toEqual(pristine);

    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    const config = repo.read('vitest.config.ts');
    expect(config).toContain("import { seqTest } from '@seq-test/vitest';");
    expect(config).toContain('plugins: [seqTest()]');
    expect(config).toContain('// Kept: a comment above the config.');
    expect(config).toContain("environment: 'node', // kept: a trailing comment");
    // git is the backup: nothing untracked appears next to the files.
    expect(repo.git(['status', '--porcelain', '--untracked-files=all'])).toBe(' M package.json\n M vitest.config.ts\n');
    const pkg = JSON.parse(repo.read('package.json'));
    expect(pkg.devDependencies['@seq-test/vitest']).toMatch(/^\^\d/);
    expect(pkg.scripts.test).toBe('vitest run');

    const after = repo.snapshot();
    const again = await repo.cli(['init', '--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to change');
    expect(repo.snapshot()).toEqual(after);

    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    expect(doctor.code).toBe(0);
  });

  it.skipIf(!integrationAvailable('@seq-test/vitest'))(
    'Vitest: the edited config really runs the suite through the plugin',
    async () => {
      const repo = fixture().initRepo();
      repo.write({
        'package.json': '{\n  "name": "v",\n  "type": "module",\n  "devDependencies": { "vitest": "^4.1.0" }\n}\n',
        'vitest.config.ts': VITEST_CONFIG,
        'test/one.test.ts': "import { expect, it } from 'vitest';\nit('runs', () => expect(1).toBe(1));\n",
      });
      repo.commitAll();
      symlinkSync(join(REPO, 'node_modules'), join(repo.dir, 'node_modules'));
      expect((await repo.cli(['init', '--vitest'])).code).toBe(0);
      const vitest = spawnSync(process.execPath, [join(REPO, 'node_modules', 'vitest', 'vitest.mjs'), 'run'], {
        cwd: repo.dir,
        env: sandbox.env(repo.env()),
        encoding: 'utf8',
        timeout: 90_000,
      });
      expect(vitest.status, `${vitest.stdout}\n${vitest.stderr}`).toBe(0);
      expect(`${vitest.stdout}${vitest.stderr}`).toMatch(/1 passed/);
    },
    120_000,
  );

  it('Jest: wraps a config that has its own globalSetup, keeping it; the wrapped config loads; second run is a no-op', async () => {
    const repo = fixture().initRepo();
    const jestConfig = `'use strict';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  globalSetup: './test/global-setup.js', // the project's own setup
};
`;
    repo.write({
      '.gitignore': 'node_modules\n',
      'package.json':
        '{\n  "name": "j",\n  "scripts": {\n    "test": "jest"\n  },\n  "devDependencies": {\n    "jest": "^29.7.0"\n  }\n}\n',
      'jest.config.js': jestConfig,
      'test/global-setup.js': 'module.exports = async () => {};\n',
    });
    repo.commitAll();
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    const edited = repo.read('jest.config.js');
    expect(edited).toContain("const { withSeqTest } = require('@seq-test/jest');");
    expect(edited).toContain('module.exports = withSeqTest({');
    expect(edited).toContain("globalSetup: './test/global-setup.js', // the project's own setup");
    expect(edited.indexOf("'use strict';")).toBe(0);
    expect(repo.exists('jest.config.js.seq-test-backup')).toBe(false);
    expect(JSON.parse(repo.read('package.json')).devDependencies['@seq-test/jest']).toMatch(/^\^/);

    if (integrationAvailable('@seq-test/jest')) {
      symlinkSync(join(REPO, 'node_modules'), join(repo.dir, 'node_modules'));
      const loaded = spawnSync(
        process.execPath,
        [
          '-e',
          "const c = require('./jest.config.js'); const j = require('@seq-test/jest'); process.stdout.write(JSON.stringify({ setup: c.globalSetup === j.GLOBAL_SETUP, globals: JSON.stringify(c.globals), maxWorkers: c.maxWorkers }))",
        ],
        { cwd: repo.dir, env: sandbox.env(repo.env()), encoding: 'utf8' },
      );
      expect(loaded.status, loaded.stderr).toBe(0);
      const result = JSON.parse(loaded.stdout);
      expect(result.setup).toBe(true);
      expect(result.globals).toContain('./test/global-setup.js');
      expect(result.maxWorkers).toBe(1);
    }

    const after = repo.snapshot();
    const again = await repo.cli(['init', '--yes']);
    expect(again.stdout).toContain('nothing to change');
    expect(repo.snapshot()).toEqual(after);
    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    expect(doctor.code, doctor.stdout).toBe(0);
  });

  it('Jest in package.json with a globalSetup: refuses to add a preset (it would be lost) and prints the snippet', async () => {
    const repo = fixture().initRepo();
    repo.write({
      'package.json':
        '{\n  "name": "j",\n  "devDependencies": { "jest": "^29.7.0" },\n  "jest": { "globalSetup": "./setup.js" }\n}\n',
    });
    const before = repo.snapshot();
    const init = await repo.cli(['init', '--jest']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('cannot edit package.json "jest" safely: it sets globalSetup');
    expect(init.stdout).toContain("const { withSeqTest } = require('@seq-test/jest');");
    expect(repo.snapshot()).toEqual(before);
    const doctor = await repo.cli(['doctor']);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain('jest.integration');
  });

  it('Jest in package.json without conflicts: sets the preset with a minimal edit', async () => {
    const repo = fixture().initRepo();
    repo.write({
      'package.json':
        '{\n  "name": "j",\n  "devDependencies": { "jest": "^29.7.0", "@seq-test/jest": "^0.1.0" },\n  "jest": {\n    "testEnvironment": "node"\n  }\n}\n',
    });
    repo.commitAll();
    const init = await repo.cli(['init', '--jest']);
    expect(init.code, init.stderr).toBe(0);
    const pkg = JSON.parse(repo.read('package.json'));
    expect(pkg.jest).toEqual({ testEnvironment: 'node', preset: '@seq-test/jest' });
    expect(repo.read('package.json')).toBe(
      '{\n  "name": "j",\n  "devDependencies": { "jest": "^29.7.0", "@seq-test/jest": "^0.1.0" },\n  "jest": {\n    "testEnvironment": "node",\n    "preset": "@seq-test/jest"\n  }\n}\n',
    );
  });

  it('pytest: writes the plugin files (the CLI’s own pytest-files.ts) and keeps the existing conftest.py', async () => {
    const repo = fixture().initRepo();
    const conftest = 'import pytest\n\n\n@pytest.fixture\ndef answer():\n    return 42\n';
    repo.write({
      'pytest.ini': '[pytest]\naddopts = -ra\n',
      'conftest.py': conftest,
      'test_answer.py': 'def test_answer(answer):\n    assert answer == 42\n',
    });
    repo.commitAll();
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    const edited = repo.read('conftest.py');
    expect(edited).toContain('pytest_plugins = ["seq_test_pytest"]');
    expect(edited).toContain('def answer():');
    expect(repo.exists('seq_test_pytest/seq_test_plugin.py')).toBe(true);
    expect(repo.exists('conftest.py.seq-test-backup')).toBe(false);
    const after = repo.snapshot();
    const again = await repo.cli(['init', '--yes']);
    expect(again.stdout).toContain('nothing to change');
    expect(repo.snapshot()).toEqual(after);
    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    expect(doctor.code, doctor.stdout).toBe(0);
    // The initialised project's own tests, under the tier's Python with pytest (without one, the global setup
    // has printed that this step is skipped).
    if (PYTHON) {
      const pytest = spawnSync(PYTHON.path, ['-m', 'pytest', '-q'], {
        cwd: repo.dir,
        env: sandbox.env(repo.env()),
        encoding: 'utf8',
      });
      expect(pytest.status, `${pytest.stdout}${pytest.stderr}`).toBe(0);
    }
  });

  it('project defaults: --timeout/--max-memory go into package.json "seqTest", or .seqtestrc.json without a package.json', async () => {
    const repo = fixture().initRepo();
    repo.write({ 'package.json': '{\n  "name": "d"\n}\n' });
    repo.commitAll();
    const init = await repo.cli(['init', '--timeout', '600', '--max-memory', '4G']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(repo.read('package.json')).seqTest).toEqual({ timeout: 600, maxMemory: '4G' });
    const again = await repo.cli(['init', '--timeout', '600', '--max-memory', '4G']);
    expect(again.stdout).toContain('nothing to change');

    const py = fixture('py').initRepo();
    expect((await py.cli(['init', '--slots', '2'])).code).toBe(0);
    expect(JSON.parse(py.read('.seqtestrc.json'))).toEqual({ slots: 2 });

    const bad = await py.cli(['init', '--slots', 'x']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toBe('seq-test: error: .seqtestrc.json "slots" must be a whole number ≥ 1 or "auto", got "x"\n');
  });

  it('GitHub Actions: writes a workflow with a concurrency group and the tests under seq-test run; refuses to replace a foreign file', async () => {
    const repo = fixture().initRepo();
    repo.write({
      'package.json': '{\n  "name": "g",\n  "scripts": { "test": "node --test" }\n}\n',
      'package-lock.json': '{}\n',
    });
    repo.commitAll();
    const init = await repo.cli(['init', '--github-actions']);
    expect(init.code, init.stderr).toBe(0);
    const workflow = repo.read('.github/workflows/seq-test.yml');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
    expect(workflow).toContain('concurrency:\n  group: ${{ github.workflow }}-${{ github.ref }}');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell or GitHub Actions syntax, not a JS template
    expect(workflow).toContain("cancel-in-progress: ${{ github.event_name == 'pull_request' }}");
    expect(workflow).toMatch(/run: npx seq-test run --timeout \d+ -- npm test/);
    expect(workflow).toContain('branches: [main]');
    const again = await repo.cli(['init', '--github-actions']);
    expect(again.stdout).toContain('nothing to change');

    repo.write({ '.github/workflows/seq-test.yml': 'name: mine\n' });
    const refused = await repo.cli(['init', '--github-actions']);
    expect(refused.stdout).toContain('exists and was not written by seq-test init: left alone');
    expect(repo.read('.github/workflows/seq-test.yml')).toBe('name: mine\n');
    // Untracked: replaced only with --force, and its content is kept outside the tree, at the place printed.
    const forced = await repo.cli(['init', '--github-actions', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(repo.read('.github/workflows/seq-test.yml')).toBe(workflow);
    const kept = /^previous content kept outside the tree, in (.+)$/m.exec(forced.stdout)?.[1] ?? '';
    expect(kept.startsWith(sandbox.env().SEQ_TEST_STATE_DIR ?? '\0'), forced.stdout).toBe(true);
    expect(readFileSync(join(kept, '.github/workflows/seq-test.yml'), 'utf8')).toBe('name: mine\n');
    expect(repo.git(['status', '--porcelain', '--untracked-files=all'])).toBe('?? .github/workflows/seq-test.yml\n');
  });
});
