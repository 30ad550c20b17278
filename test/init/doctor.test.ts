import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox, waitFor } from '../support/processes.js';
import { Fixture, problems } from './helpers.js';

let sandbox: TestSandbox;
afterEach(() => {
  chmodSync(sandbox.dir, 0o700);
  expect(sandbox.cleanup()).toBe(0);
});

function fixture(): Fixture {
  sandbox = new TestSandbox();
  return new Fixture(sandbox, join(sandbox.dir, 'repo')).initRepo();
}

interface Finding {
  severity: string;
  check: string;
  file?: string;
  message: string;
  fix?: string;
}

describe('seq-test doctor', () => {
  it('names each gap with its file and fix, exits 1; after init --yes only notes remain and it exits 0', async () => {
    const repo = fixture();
    repo.write({
      'package.json':
        '{\n  "name": "messy",\n  "scripts": { "test": "vitest run && jest" },\n  "devDependencies": { "vitest": "^4.1.0", "jest": "^29.7.0" }\n}\n',
      'vitest.config.mjs':
        "import { defineConfig } from 'vitest/config';\n\nexport default defineConfig({ test: { maxWorkers: 8 } });\n",
      'jest.config.js': 'module.exports = { maxWorkers: 4 };\n',
      'pyproject.toml': '[project]\nname = "messy"\n\n[tool.pytest.ini_options]\naddopts = "-ra -n auto"\n',
      '.pre-commit-config.yaml':
        'repos:\n  - repo: local\n    hooks:\n      - id: mypy\n        name: mypy\n        entry: mypy src\n        language: system\n',
    });
    repo.write({ '.git/hooks/pre-commit': '#!/bin/sh\nnpm test\n' }, 0o755);
    const result = await repo.cli(['doctor', '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; findings: Finding[]; counts: Record<string, number> };
    expect(report.ok).toBe(false);
    const byCheck = (check: string) => report.findings.find((f) => f.check === check);
    expect(byCheck('vitest.integration')).toMatchObject({
      severity: 'error',
      file: 'vitest.config.mjs',
      fix: 'seq-test init --vitest',
    });
    expect(byCheck('vitest.workers')).toMatchObject({ severity: 'warning', file: 'vitest.config.mjs' });
    expect(byCheck('jest.integration')).toMatchObject({
      severity: 'error',
      file: 'jest.config.js',
      fix: 'seq-test init --jest',
    });
    expect(byCheck('jest.workers')?.message).toContain('sets maxWorkers to 4');
    expect(byCheck('pytest.integration')?.fix).toMatch(/^seq-test init --pytest/);
    expect(byCheck('pytest.workers')).toMatchObject({ severity: 'warning', file: 'pyproject.toml' });
    expect(byCheck('pytest.workers')?.message).toContain('-n auto');
    expect(byCheck('pre-commit.require-serial')).toMatchObject({
      severity: 'warning',
      file: '.pre-commit-config.yaml',
    });
    expect(byCheck('git-hook.bypass')).toMatchObject({
      severity: 'error',
      file: '.git/hooks/pre-commit',
      fix: 'seq-test init --git-hook',
    });

    const text = await repo.cli(['doctor']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(
      /^error {3}git-hook\.bypass {2}\.git\/hooks\/pre-commit\n {8}\.git\/hooks\/pre-commit runs without seq-test/m,
    );
    expect(text.stdout).toMatch(/^ {8}fix: seq-test init --git-hook$/m);
    expect(text.stdout).toMatch(/error\(s\), \d+ warning\(s\), \d+ note\(s\): not safe yet \(exit 1\)\n$/);

    repo.commitAll();
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    const after = await repo.cli(['doctor', '--json']);
    // Workers: the plugins run one worker; pytest's -n is the user's to remove (init does not edit addopts).
    expect(problems(after.stdout).map((f) => f.check)).toEqual(['pytest.workers']);
    expect(after.code).toBe(0);
    expect((await repo.cli(['doctor', '--strict'])).code).toBe(1);
  });

  it('pre-commit hooks queued by their entry: an error when the seq-test they call is not there (npx would fetch it from the registry)', async () => {
    const repo = fixture();
    const config =
      'repos:\n  - repo: local\n    hooks:\n      - id: pytest\n        name: pytest\n        entry: python -m pytest\n        language: system\n        pass_filenames: false\n';
    repo.write({ '.pre-commit-config.yaml': config, 'package.json': '{\n  "name": "p"\n}\n' });
    repo.commitAll();
    expect((await repo.cli(['init', '--pre-commit'])).code).toBe(0);
    expect(repo.read('.pre-commit-config.yaml')).toContain('entry: npx seq-test run -- python -m pytest\n');
    // Without node_modules/.bin/seq-test and without one on PATH.
    const without = await repo.cli(['doctor', '--json'], { env: { PATH: '/usr/bin:/bin' } });
    expect(without.code).toBe(1);
    expect(problems(without.stdout)).toMatchObject([
      { severity: 'error', check: 'pre-commit.seq-test-missing', fix: 'npm install (seq-test is in devDependencies)' },
    ]);
    // With it (the fixture's PATH has one).
    expect(problems((await repo.cli(['doctor', '--json'])).stdout)).toEqual([]);
  });

  it('an unsafe state dir is an error with the fix', async () => {
    const repo = fixture();
    const stateDir = join(sandbox.dir, 'shared-state');
    mkdirSync(stateDir);
    chmodSync(stateDir, 0o777);
    const result = await repo.cli(['doctor', '--json'], { env: { SEQ_TEST_STATE_DIR: stateDir } });
    expect(result.code).toBe(1);
    const finding = (JSON.parse(result.stdout).findings as Finding[]).find((f) => f.check === 'state-dir.unsafe');
    expect(finding?.severity).toBe('error');
    expect(finding?.message).toContain(`refusing state dir ${stateDir}: mode 777 lets others write to it`);
    // A directory SEQ_TEST_STATE_DIR names may be shared: the fix is a private one, never a chmod of it.
    expect(finding?.fix).toMatch(/^set SEQ_TEST_STATE_DIR to a private directory .* export SEQ_TEST_STATE_DIR=\//);
  });

  it('a killed run: its ticket is reported (warning) and its leftovers in this project (error); seq-test reap clears both', async () => {
    const repo = fixture();
    const started = sandbox.start(['run', '--', 'sh', '-c', 'echo started; exec sleep 60 >/dev/null 2>&1'], {
      cwd: repo.dir,
      env: repo.env(),
    });
    await waitFor(() => started.output.stdout.includes('started'), 15_000, 'the run to start');
    const exited = new Promise((resolve) => started.child.once('exit', resolve));
    started.child.kill('SIGKILL');
    await exited; // not `finished`: that waits for the pipes, which the leftover still holds
    const result = await repo.cli(['doctor', '--json']);
    const findings = JSON.parse(result.stdout).findings as Finding[];
    const dead = findings.find((f) => f.check === 'queue.dead-ticket');
    expect(dead).toMatchObject({ severity: 'warning', fix: 'seq-test reap' });
    expect(result.code).toBe(0); // a dead ticket alone is not unsafe: the next run removes it

    // A leftover: a process carrying the token of a run whose owner is gone, working in this project.
    const owner = sandbox.start(['0.3'], { file: 'sleep' });
    const ownerPid = owner.child.pid as number;
    const stat = readFileSync(`/proc/${ownerPid}/stat`, 'latin1');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    await owner.finished;
    const leftover = sandbox.start(['60'], {
      file: 'sleep',
      cwd: repo.dir,
      env: { SEQ_TEST_TOKEN: `${ownerPid}.${start}.abcdef123456` },
      stdin: 'ignore',
    });
    const withLeftover = await repo.cli(['doctor', '--json']);
    expect(withLeftover.code).toBe(1);
    const leftovers = (JSON.parse(withLeftover.stdout).findings as Finding[]).find((f) => f.check === 'leftovers');
    expect(leftovers?.severity).toBe('error');
    expect(leftovers?.message).toContain(`pid ${leftover.child.pid} sleep 60`);
    expect(leftovers?.fix).toContain('seq-test reap');
    const reap = await repo.cli(['reap']);
    expect(reap.code, reap.stderr).toBe(0);
    const clean = await repo.cli(['doctor', '--json']);
    expect(problems(clean.stdout)).toEqual([]);
    expect(clean.code).toBe(0);
  });
});
