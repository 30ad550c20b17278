import { EXIT } from '@seq-test/core';
import type { Command } from 'commander';
import type { InitOptions } from '../setup/init.js';

/** Commander hands over the same fields runInit takes (cwd aside); a type-only import keeps setup/ lazy. */
type RawInitOptions = Omit<InitOptions, 'cwd'>;

export function registerInit(program: Command): void {
  program
    .command('init')
    .summary('set up this repository: test runner plugins, git hooks, pre-commit, CI')
    .description(
      'Looks at what the repository uses (Vitest, Jest, pytest, the pre-commit framework, husky or ' +
        'core.hooksPath, GitHub Actions, GitLab CI) and sets each up to go through the queue. On a terminal ' +
        "it asks; elsewhere it needs --yes or step flags. Edits add only what is needed, in the file's own " +
        'style. Nothing is written next to your files: git is the backup, so a file with uncommitted changes is ' +
        'refused unless --force (its old content then goes to the state dir, as do files git does not cover, ' +
        'such as .git/hooks). A file it cannot edit safely is left alone and the snippet to paste is printed. ' +
        'Running it again changes nothing.',
    )
    .option('-y, --yes', 'apply every step that fits this repository without asking')
    .option('--dry-run', 'print the changes as a unified diff; write nothing')
    .option('--vitest', 'only the steps named by flags: add the seqTest() plugin to the Vitest config')
    .option('--jest', 'wrap the Jest config with withSeqTest() (or set the preset)')
    .option('--pytest', 'write the pytest plugin files and load them from conftest.py')
    .option('--pre-commit', 'add require_serial: true to pre-commit hooks that run tests or type checkers')
    .option('--git-hook', 'run the existing pre-commit/pre-push hooks (plain, husky, pre-commit) under seq-test run')
    .option('--github-actions', 'write .github/workflows/seq-test.yml (concurrency group, tests under seq-test run)')
    .option('--gitlab-ci', 'print a .gitlab-ci.yml job (resource_group, tests under seq-test run) to paste')
    .option(
      '--hook-command <cmd>',
      'when there is no pre-commit hook to wrap, create one that runs CMD (implies --git-hook)',
    )
    .option('--timeout <sec>', 'write a default --timeout for runs of this project (package.json "seqTest")')
    .option('--max-memory <size>', 'write a default --max-memory (512M, 4G)')
    .option('--slots <n>', 'write a default --slots')
    .option('--key <key>', 'write a lock key shared by every checkout that uses it')
    .option(
      '--force',
      'edit files with uncommitted changes, and rewrite files init wrote before and you changed since (the old content is kept in the state dir)',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ seq-test init                          ask which steps to apply (on a terminal)
  $ seq-test init --yes                    apply every step that fits, no questions
  $ seq-test init --dry-run                show the diff of what --yes would do
  $ seq-test init --vitest --git-hook      only these two steps
  $ seq-test init --git-hook --hook-command 'npm test'
  $ seq-test init --timeout 900 --max-memory 4G

Exit codes: 0 done (or nothing to do); ${EXIT.USAGE} bad usage, a refused write, or no terminal to ask on
without --yes (the plan is printed first); 130 cancelled at a prompt.`,
    )
    .action(async (raw: RawInitOptions) => {
      const { runInit } = await import('../setup/init.js');
      const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;
      process.exitCode = await runInit(raw, {
        interactive,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    });
}
