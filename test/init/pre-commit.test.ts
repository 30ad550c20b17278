import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { available } from '../support/tools.js';
import { Fixture, problems, stampLine, stamps } from './helpers.js';
import { expectCommitQueued, TOKEN } from './queue-check.js';

let sandbox: TestSandbox;
afterEach(() => {
  sandbox && expect(sandbox.cleanup()).toBe(0);
});

/**
 * The real pre-commit framework (Debian's `pre-commit`; without it these tests skip and the tier's global setup
 * prints one line saying so). Offline: local hooks, and a hook repository that is a local git repository.
 */
describe.runIf(available('pre-commit'))('the pre-commit framework, for real', () => {
  function setUp(): {
    repo: Fixture;
    stampFile: string;
    hookRepo: string;
    env: NodeJS.ProcessEnv;
    pc: (args: string[]) => Promise<void>;
  } {
    sandbox = new TestSandbox();
    // pre-commit's cache of hook repositories and environments: the sandbox's, whatever XDG_CACHE_HOME says.
    const env = { PRE_COMMIT_HOME: join(sandbox.dir, 'pre-commit-home') };
    const repo = new Fixture(sandbox, join(sandbox.dir, 'repo'));
    const stampFile = join(sandbox.dir, 'stamps');
    // A hook repository with two tags, for `pre-commit autoupdate`.
    const hookRepo = join(sandbox.dir, 'hook-repo');
    const hooks = new Fixture(sandbox, hookRepo).initRepo();
    hooks.write({
      '.pre-commit-hooks.yaml': '- id: remote-lint\n  name: remote lint\n  entry: lint.sh\n  language: script\n',
    });
    hooks.write({ 'lint.sh': `#!/bin/sh\n${stampLine(stampFile, 'remote-lint')}\n` }, 0o755);
    hooks.commitAll('v1');
    hooks.git(['tag', 'v1']);
    hooks.write({ README: 'v2\n' });
    hooks.commitAll('v2');
    hooks.git(['tag', 'v2']);
    const pc = async (args: string[]) => {
      const result = await sandbox.run(args, { cwd: repo.dir, env: repo.env(env), file: 'pre-commit' });
      expect(result.code, `pre-commit ${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(0);
    };
    return { repo, stampFile, hookRepo, env, pc };
  }

  it('init queues the heavy hooks in .pre-commit-config.yaml; commits queue behind a held lock, also after `pre-commit install` and `autoupdate` again', async () => {
    const { repo, stampFile, hookRepo, env, pc } = setUp();
    repo.initRepo();
    const config = `# Hooks. Comments stay.
repos:
  - repo: ${hookRepo}
    rev: v1
    hooks:
      - id: remote-lint   # fast: outside the queue
  - repo: local
    hooks:
      - id: lint
        name: lint
        entry: sh checks/lint.sh
        language: system
      - id: pytest
        name: pytest
        entry: sh checks/heavy.sh pytest
        language: system
        pass_filenames: false
      - id: typecheck
        name: typecheck
        entry: typecheck.sh
        language: script
        pass_filenames: false
`;
    repo.write({
      '.pre-commit-config.yaml': config,
      'checks/lint.sh': `${stampLine(stampFile, 'lint')}\n`,
      'checks/heavy.sh': `${stampLine(stampFile, '$1')}\n`,
      'a.txt': 'a\n',
    });
    repo.write({ 'typecheck.sh': `#!/bin/sh\n${stampLine(stampFile, 'typecheck')}\n` }, 0o755);
    repo.commitAll();
    await pc(['install']);
    const generated = repo.read('.git/hooks/pre-commit');

    const before = await repo.cli(['doctor', '--json']);
    expect(before.code).toBe(1);
    expect(problems(before.stdout).map((f) => f.check)).toEqual(['pre-commit.unqueued', 'pre-commit.unqueued']);

    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(repo.read('.pre-commit-config.yaml')).toBe(
      config
        .replace('entry: sh checks/heavy.sh pytest', 'entry: seq-test run -- sh checks/heavy.sh pytest')
        .replace(
          'entry: typecheck.sh\n        language: script',
          'entry: seq-test run -- ./typecheck.sh\n        language: system',
        ),
    );
    // The hook `pre-commit install` writes is pre-commit's: left as it is.
    expect(repo.read('.git/hooks/pre-commit')).toBe(generated);
    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    expect(doctor.code).toBe(0);
    repo.commitAll('after init');
    expect((await repo.cli(['init', '--yes'])).stdout).toContain('nothing to change');

    // A commit: the fast hooks run at once; pytest and typecheck wait for the held lock, then run under it.
    repo.write({ 'a.txt': 'b\n' });
    repo.git(['add', 'a.txt']);
    const first = await expectCommitQueued(repo, stampFile, ['pytest', 'typecheck'], 'queued', env);
    expect(first.filter((s) => s.event === 'lint' || s.event === 'remote-lint').map((s) => s.token)).toEqual([
      'none',
      'none',
    ]);

    // `pre-commit install` again (a new clone, a new machine, a reinstall): the queue is in the config, it stays.
    await pc(['install']);
    repo.write({ 'a.txt': 'c\n' });
    repo.git(['add', 'a.txt']);
    await expectCommitQueued(repo, stampFile, ['pytest', 'typecheck'], 'after pre-commit install', env);

    // `pre-commit autoupdate` rewrites the rev, nothing else.
    const queued = repo.read('.pre-commit-config.yaml');
    await pc(['autoupdate']);
    expect(repo.read('.pre-commit-config.yaml')).toBe(queued.replace('rev: v1', 'rev: v2'));
    repo.git(['add', '-A']);
    await expectCommitQueued(repo, stampFile, ['pytest', 'typecheck'], 'after autoupdate', env);
    expect((await repo.cli(['doctor'])).code).toBe(0);
  });

  it('a heavy hook init cannot queue in the config (a script in a hook repository): the whole run is queued by the block in the hook, until `pre-commit install` removes it, which doctor reports', async () => {
    const { repo, stampFile, hookRepo, env, pc } = setUp();
    const hooks = new Fixture(sandbox, hookRepo);
    hooks.write({
      '.pre-commit-hooks.yaml':
        '- id: typecheck-remote\n  name: typecheck\n  entry: typecheck.sh\n  language: script\n  pass_filenames: false\n',
    });
    hooks.write({ 'typecheck.sh': `#!/bin/sh\n${stampLine(stampFile, 'typecheck-remote')}\n` }, 0o755);
    hooks.commitAll('v3');
    hooks.git(['tag', 'v3']);
    repo.initRepo();
    repo.write({
      '.pre-commit-config.yaml': `repos:\n  - repo: ${hookRepo}\n    rev: v3\n    hooks:\n      - id: typecheck-remote\n`,
      'a.txt': 'a\n',
    });
    repo.commitAll();
    await pc(['install']);

    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`hook "typecheck-remote": its entry is in ${hookRepo}'s .pre-commit-hooks.yaml`);
    expect(repo.read('.git/hooks/pre-commit')).toContain('# >>> seq-test >>>');
    const doctor = await repo.cli(['doctor', '--json']);
    expect(doctor.code).toBe(0);
    expect(problems(doctor.stdout).map((f) => `${f.severity} ${f.check}`)).toEqual(['warning pre-commit.unqueued']);
    repo.commitAll('after init');

    repo.write({ 'a.txt': 'b\n' });
    repo.git(['add', 'a.txt']);
    await expectCommitQueued(repo, stampFile, ['typecheck-remote'], 'queued', env);

    await pc(['install']);
    expect(repo.read('.git/hooks/pre-commit')).not.toContain('# >>> seq-test >>>');
    const after = await repo.cli(['doctor', '--json']);
    expect(after.code).toBe(1);
    expect(problems(after.stdout).map((f) => `${f.severity} ${f.check}`)).toEqual(['error pre-commit.unqueued']);
    repo.write({ 'a.txt': 'c\n' });
    repo.git(['add', 'a.txt']);
    repo.git(['commit', '-q', '-m', 'unqueued'], { env });
    expect(stamps(stampFile).at(-1)).toMatchObject({ event: 'typecheck-remote', token: 'none' });
    expect(stamps(stampFile).at(-2)?.token).toMatch(TOKEN);
  });
});
