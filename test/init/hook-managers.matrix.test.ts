import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { Fixture, problems, stampLine } from './helpers.js';
import { expectCommitQueued } from './queue-check.js';

let sandbox: TestSandbox | undefined;
afterEach(() => {
  if (sandbox) expect(sandbox.cleanup()).toBe(0);
  sandbox = undefined;
});

/** The hook managers as their users install them, from the npm registry (matrix tier: needs the network). */
const VERSIONS = { husky: '9.1.7', 'simple-git-hooks': '2.14.0', lefthook: '2.2.4' } as const;
/** npm install of one hook manager on a cold cache, on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 300_000;

/**
 * Under `npm test`, npm_* variables describe this monorepo: a nested npm (and the npx in the hooks) must not
 * see them. The user's npm cache is shared, so a second run does not download again.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of Object.keys(process.env)) if (/^npm_/i.test(key)) env[key] = undefined;
  return { ...env, npm_config_cache: join(homedir(), '.npm'), npm_config_update_notifier: 'false' };
}

/**
 * A git repository whose hook manager (installed for real with npm) runs `sh checks/heavy.sh`, which records a
 * stamp; `seq-test` in node_modules/.bin is this repository's CLI (the shim on the fixture's PATH).
 */
function managedRepo(
  manager: keyof typeof VERSIONS,
  files: Record<string, string>,
  pkg: Record<string, unknown>,
): { repo: Fixture; stampFile: string } {
  sandbox = new TestSandbox();
  const repo = new Fixture(sandbox, join(sandbox.dir, manager)).initRepo();
  const stampFile = join(sandbox.dir, 'stamps');
  repo.write({
    '.gitignore': 'node_modules/\n',
    'checks/heavy.sh': `${stampLine(stampFile, 'heavy')}\n`,
    'package.json': `${JSON.stringify({ name: `${manager}-repo`, private: true, ...pkg, devDependencies: { [manager]: VERSIONS[manager] } }, null, 2)}\n`,
    ...files,
  });
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: repo.dir,
    env: sandbox.env(repo.env(npmEnv())),
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
  });
  expect(install.status, `npm install ${manager}: ${install.stderr}${install.stdout}`).toBe(0);
  const bin = join(repo.dir, 'node_modules', '.bin', 'seq-test');
  writeFileSync(bin, `#!/bin/sh\nexec '${join(repo.bin, 'seq-test')}' "$@"\n`);
  chmodSync(bin, 0o755);
  repo.commitAll();
  return { repo, stampFile };
}

async function npx(repo: Fixture, args: string[]): Promise<void> {
  const result = await repo.sandbox.run(args, { cwd: repo.dir, env: repo.env(npmEnv()), file: 'npx' });
  expect(result.code, `npx ${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(0);
}

describe('real commits through the hook managers after seq-test init', () => {
  it(
    `husky ${VERSIONS.husky}: .husky/pre-commit gets the block; the commit's command queues behind a held lock`,
    async () => {
      const { repo, stampFile } = managedRepo(
        'husky',
        { '.husky/pre-commit': 'sh checks/heavy.sh\n' },
        { scripts: { prepare: 'husky' } },
      );
      expect(repo.git(['config', 'core.hooksPath']).trim()).toBe('.husky/_');
      const init = await repo.cli(['init', '--git-hook'], { env: npmEnv() });
      expect(init.code, init.stderr).toBe(0);
      expect(repo.read('.husky/pre-commit')).toMatch(/^# >>> seq-test >>>[\s\S]*\nsh checks\/heavy\.sh\n$/);
      expect(problems((await repo.cli(['doctor', '--json'])).stdout)).toEqual([]);
      repo.commitAll('after init');
      await expectCommitQueued(repo, stampFile, ['heavy'], 'husky', npmEnv());
      // husky reinstalled (npm install runs `prepare`): .husky/pre-commit is the user's file, it keeps the block.
      await npx(repo, ['husky']);
      await expectCommitQueued(repo, stampFile, ['heavy'], 'husky again', npmEnv());
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );

  it(
    `simple-git-hooks ${VERSIONS['simple-git-hooks']}: its package.json command goes under seq-test run; after \`npx simple-git-hooks\` the commit queues`,
    async () => {
      const { repo, stampFile } = managedRepo(
        'simple-git-hooks',
        {},
        { 'simple-git-hooks': { 'pre-commit': 'sh checks/heavy.sh' } },
      );
      await npx(repo, ['simple-git-hooks']);
      const init = await repo.cli(['init', '--git-hook'], { env: npmEnv() });
      expect(init.code, init.stderr).toBe(0);
      expect(JSON.parse(repo.read('package.json'))['simple-git-hooks']).toEqual({
        'pre-commit': 'npx seq-test run -- sh checks/heavy.sh',
      });
      // The installed hook is generated from package.json: stale until simple-git-hooks runs again.
      const stale = await repo.cli(['doctor', '--json']);
      expect(problems(stale.stdout).map((f) => f.check)).toEqual(['git-hook.stale']);
      await npx(repo, ['simple-git-hooks']);
      expect(problems((await repo.cli(['doctor', '--json'])).stdout)).toEqual([]);
      repo.commitAll('after init');
      await expectCommitQueued(repo, stampFile, ['heavy'], 'simple-git-hooks', npmEnv());
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );

  it(
    `lefthook ${VERSIONS.lefthook}: lefthook.yml's command goes under seq-test run; the commit queues, also after \`lefthook install\` again`,
    async () => {
      const { repo, stampFile } = managedRepo(
        'lefthook',
        {
          'lefthook.yml':
            '# Hooks. Comments stay.\npre-commit:\n  commands:\n    heavy:\n      run: sh checks/heavy.sh\n',
        },
        {},
      );
      await npx(repo, ['lefthook', 'install']);
      const init = await repo.cli(['init', '--git-hook'], { env: npmEnv() });
      expect(init.code, init.stderr).toBe(0);
      expect(repo.read('lefthook.yml')).toBe(
        '# Hooks. Comments stay.\npre-commit:\n  commands:\n    heavy:\n      run: npx seq-test run -- sh checks/heavy.sh\n',
      );
      repo.commitAll('after init');
      // lefthook skips a command when no staged file matches: stage one.
      repo.write({ 'a.txt': 'a\n' });
      repo.git(['add', 'a.txt']);
      await expectCommitQueued(repo, stampFile, ['heavy'], 'lefthook', npmEnv());
      await npx(repo, ['lefthook', 'install']);
      expect(problems((await repo.cli(['doctor', '--json'])).stdout)).toEqual([]);
      repo.write({ 'a.txt': 'b\n' });
      repo.git(['add', 'a.txt']);
      await expectCommitQueued(repo, stampFile, ['heavy'], 'lefthook again', npmEnv());
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );
});
