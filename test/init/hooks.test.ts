import { chmodSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { insertGuard } from '../../packages/cli/src/setup/templates.js';
import { TestSandbox } from '../support/processes.js';
import { Fixture, problems, stampLine, stamps } from './helpers.js';

let sandbox: TestSandbox;
afterEach(() => {
  expect(sandbox.cleanup()).toBe(0);
});

function fixture(name = 'repo'): Fixture {
  sandbox = new TestSandbox();
  return new Fixture(sandbox, join(sandbox.dir, name));
}

/** A guarded hook that fails, as init would write it. */
function renderFailing(): string {
  return insertGuard('#!/bin/sh\necho "hook says no" >&2\nexit 3\n');
}

describe('seq-test init: git hooks', () => {
  it('husky (v9 layout): .husky/pre-commit gets the block, its commands stay, and the commit goes through the queue', async () => {
    const repo = fixture().initRepo();
    const stampFile = join(sandbox.dir, 'stamps');
    // What `husky` (v9) generates: core.hooksPath=.husky/_, stubs that source .husky/_/h, which runs
    // .husky/<hook> with `sh -e`.
    repo.write({
      '.husky/_/h': `#!/usr/bin/env sh
[ "$HUSKY" = "2" ] && set -x
n=$(basename "$0")
s=$(dirname "$(dirname "$0")")/$n

[ ! -f "$s" ] && exit 0

[ "\${HUSKY-}" = "0" ] && exit 0

export PATH="node_modules/.bin:$PATH"
sh -e "$s" "$@"
c=$?

[ $c != 0 ] && echo "husky - $n script failed (code $c)"
[ $c = 127 ] && echo "husky - command not found in PATH=$PATH"
exit $c
`,
      '.husky/_/pre-commit': '#!/usr/bin/env sh\n. "$(dirname "$0")/h"\n',
      '.husky/_/.gitignore': '*\n',
      '.husky/pre-commit': `${stampLine(stampFile, 'husky')}\n`,
      'package.json': '{\n  "name": "h",\n  "devDependencies": {\n    "husky": "^9.1.7"\n  }\n}\n',
    });
    chmodSync(join(repo.dir, '.husky/_/h'), 0o755);
    chmodSync(join(repo.dir, '.husky/_/pre-commit'), 0o755);
    repo.git(['config', 'core.hooksPath', '.husky/_']);
    repo.commitAll();

    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('husky (v9), core.hooksPath=.husky/_');
    const script = repo.read('.husky/pre-commit');
    expect(script.startsWith('# >>> seq-test >>>')).toBe(true);
    expect(script.endsWith(`${stampLine(stampFile, 'husky')}\n`)).toBe(true);
    expect(repo.read('.husky/_/pre-commit')).toBe('#!/usr/bin/env sh\n. "$(dirname "$0")/h"\n');
    expect(JSON.parse(repo.read('package.json')).devDependencies['seq-test']).toMatch(/^\^/);

    repo.git(['commit', '-q', '--allow-empty', '-m', 'hooked']);
    const recorded = stamps(stampFile);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.token).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);

    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    const after = repo.snapshot();
    expect((await repo.cli(['init', '--yes'])).stdout).toContain('nothing to change');
    expect(repo.snapshot()).toEqual(after);
  });

  it('core.hooksPath: a shell hook gets the block; a Node hook is kept as <hook>.seq-test-orig and still runs (git push)', async () => {
    const repo = fixture().initRepo();
    const stampFile = join(sandbox.dir, 'stamps');
    repo.write(
      {
        '.githooks/pre-commit': `#!/usr/bin/env bash\nset -euo pipefail\n${stampLine(stampFile, 'pre-commit')}\n`,
        // A hook in another language (Node here, so the default tier needs no Python) is not a shell script.
        '.githooks/pre-push': `#!/usr/bin/env node\nrequire('node:fs').appendFileSync(${JSON.stringify(stampFile)}, \`pre-push \${Date.now()} \${process.env.SEQ_TEST_TOKEN ?? 'none'}\\n\`);\n`,
      },
      0o755,
    );
    repo.git(['config', 'core.hooksPath', '.githooks']);
    repo.commitAll();
    const remote = join(sandbox.dir, 'remote.git');
    repo.git(['init', '-q', '--bare', remote], { cwd: sandbox.dir });
    repo.git(['remote', 'add', 'origin', remote]);

    const dry = await repo.cli(['init', '--git-hook', '--dry-run']);
    expect(dry.stdout).toContain('--- /dev/null\n+++ b/.githooks/pre-push.seq-test-orig');

    const init = await repo.cli(['init', '--git-hook']);
    expect(init.code, init.stderr).toBe(0);
    expect(repo.read('.githooks/pre-commit')).toMatch(
      /^#!\/usr\/bin\/env bash\n# >>> seq-test >>>[\s\S]*# <<< seq-test <<<\nset -euo pipefail\n/,
    );
    expect(repo.read('.githooks/pre-push.seq-test-orig')).toContain('#!/usr/bin/env node');
    expect(repo.read('.githooks/pre-push')).toContain('exec "$(dirname -- "$0")/pre-push.seq-test-orig" "$@"');

    repo.git(['commit', '-q', '--allow-empty', '-m', 'hooked']);
    repo.git(['push', '-q', 'origin', 'main']);
    const recorded = stamps(stampFile);
    expect(recorded.map((s) => s.event)).toEqual(['pre-commit', 'pre-push']);
    for (const s of recorded) expect(s.token).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);

    const doctor = await repo.cli(['doctor', '--json']);
    expect(problems(doctor.stdout)).toEqual([]);
    const after = repo.snapshot();
    expect((await repo.cli(['init', '--git-hook'])).stdout).toContain('nothing to change');
    expect(repo.snapshot()).toEqual(after);
  });

  it('a hook that is a link to a tracked script: the script gets the block, the link stays', async () => {
    const repo = fixture().initRepo();
    const stampFile = join(sandbox.dir, 'stamps');
    repo.write({ 'scripts/pre-commit.sh': `#!/bin/sh\n${stampLine(stampFile, 'linked')}\n` }, 0o755);
    repo.commitAll();
    symlinkSync('../../scripts/pre-commit.sh', join(repo.dir, '.git/hooks/pre-commit'));
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(repo.read('scripts/pre-commit.sh')).toMatch(/^#!\/bin\/sh\n# >>> seq-test >>>/);
    expect(repo.git(['diff', '--stat'])).toContain('scripts/pre-commit.sh');
    repo.git(['commit', '-q', '--allow-empty', '-m', 'linked']);
    expect(stamps(stampFile)[0]?.token).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);
  });

  it('GitLab CI: prints a job with a resource_group to paste, never edits .gitlab-ci.yml', async () => {
    const repo = fixture().initRepo();
    const gitlab = 'stages: [test]\n';
    repo.write({ '.gitlab-ci.yml': gitlab, 'package.json': '{\n  "scripts": { "test": "node --test" }\n}\n' });
    const init = await repo.cli(['init', '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('paste into .gitlab-ci.yml:');
    expect(init.stdout).toContain('resource_group: tests-$CI_COMMIT_REF_SLUG');
    expect(init.stdout).toContain('- npx seq-test run --timeout 1740 -- npm test');
    expect(repo.read('.gitlab-ci.yml')).toBe(gitlab);
  });

  it('two git commits at once (two worktrees, one key): their hooks run one after the other', async () => {
    const repo = fixture().initRepo();
    const stampFile = join(sandbox.dir, 'stamps');
    repo.write({
      // One lane for every worktree of this repository.
      'package.json': `{\n  "name": "c",\n  "seqTest": { "key": "init-e2e-${sandbox.marker}" }\n}\n`,
    });
    repo.write(
      {
        '.git/hooks/pre-commit': `#!/bin/sh\n${stampLine(stampFile, 'start')}\nsleep 1\n${stampLine(stampFile, 'end')}\n`,
      },
      0o755,
    );
    repo.commitAll();
    const other = join(sandbox.dir, 'other');
    repo.git(['worktree', 'add', '-q', '-b', 'side', other]);
    expect((await repo.cli(['init', '--git-hook'])).code).toBe(0);

    const commit = (cwd: string, message: string) =>
      sandbox.start(['commit', '-q', '--allow-empty', '-m', message], { cwd, env: repo.env(), file: 'git' }).finished;
    const [a, b] = await Promise.all([commit(repo.dir, 'a'), commit(other, 'b')]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const recorded = stamps(stampFile);
    expect(recorded.map((s) => s.event)).toEqual(['start', 'end', 'start', 'end']);
    const [s1, e1, s2, e2] = recorded;
    expect(s1?.token).toBe(e1?.token);
    expect(s2?.token).toBe(e2?.token);
    expect(s1?.token).not.toBe(s2?.token);
    expect(s2!.at).toBeGreaterThanOrEqual(e1!.at);
    // the waiting commit said why it waited
    expect(`${a.stderr}${b.stderr}`).toMatch(/seq-test: .*(waiting|our turn)/);
  });

  it('no hook to wrap: --hook-command creates one; SEQ_TEST_DISABLE=1 runs it without the queue; a missing seq-test fails the commit clearly', async () => {
    const repo = fixture().initRepo();
    const stampFile = join(sandbox.dir, 'stamps');
    const plain = await repo.cli(['init', '--git-hook']);
    expect(plain.stdout).toContain("no pre-commit hook to wrap in .git/hooks (--hook-command 'npm test' creates one)");
    const init = await repo.cli(['init', '--git-hook', '--hook-command', stampLine(stampFile, 'created')]);
    expect(init.code, init.stderr).toBe(0);
    repo.git(['commit', '-q', '--allow-empty', '-m', 'one']);
    repo.git(['commit', '-q', '--allow-empty', '-m', 'two'], { env: { SEQ_TEST_DISABLE: '1' } });
    const recorded = stamps(stampFile);
    expect(recorded).toHaveLength(2);
    expect(recorded[0]?.token).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);
    expect(recorded[1]?.token).toBe('none');

    // The hook's own exit status still decides the commit.
    repo.write({ '.git/hooks/pre-commit': renderFailing() }, 0o755);
    expect(() => repo.git(['commit', '-q', '--allow-empty', '-m', 'refused'])).toThrow(/failed \(1\): hook says no/);

    // Without seq-test reachable, the commit fails with a message that says what to do.
    expect(() =>
      repo.git(['commit', '-q', '--allow-empty', '-m', 'three'], { env: { PATH: '/usr/bin:/bin' } }),
    ).toThrow(/seq-test: not found; install it \(npm i -D seq-test\) or set SEQ_TEST_BIN/);
  });
});
