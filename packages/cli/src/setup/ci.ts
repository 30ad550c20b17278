import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CiOptions, renderGithubWorkflow, renderGitlabSnippet } from '@seq-test/hooks';
import type { Detection } from './detect.js';
import { safeList } from './detect.js';
import { defaultBranch } from './git.js';
import type { StepContext, StepOutcome } from './types.js';

export const WORKFLOW_FILE = join('.github', 'workflows', 'seq-test.yml');
const MARK = 'Written by `seq-test init`';

/** What CI should run, from what the repository uses. */
export function ciOptions(root: string, detection: Detection): CiOptions | undefined {
  const options: CiOptions = { branch: detection.isGit ? defaultBranch(root) : 'main' };
  if (detection.packageJson && detection.testScript) {
    const pm = detection.packageManager;
    options.node = { packageManager: pm, testCommand: pm === 'bun' ? 'bun run test' : `${pm} test` };
  }
  if (detection.pytest.used) {
    const requirements = safeList(root).filter((f) => /^requirements.*\.txt$/.test(f));
    const parts = ['python -m pip install'];
    let pyproject = false;
    try {
      pyproject = /^\s*\[project\]/m.test(readFileSync(join(root, 'pyproject.toml'), 'utf8'));
    } catch {}
    if (pyproject) parts.push('-e .');
    for (const file of requirements) parts.push(`-r ${file}`);
    parts.push('pytest');
    options.python = { install: parts.join(' '), testCommand: 'python -m pytest' };
  }
  return options.node || options.python ? options : undefined;
}

export function planGithubActions(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'github-actions', status: 'changed', messages: [], snippets: [] };
  const options = ciOptions(ctx.root, detection);
  if (!options) {
    return {
      ...outcome,
      status: 'skipped',
      messages: ['no test command found (no package.json "test" script, no pytest): nothing for CI to run'],
    };
  }
  const path = join(ctx.root, WORKFLOW_FILE);
  const wanted = renderGithubWorkflow(options);
  const current = ctx.overlay.read(path);
  if (current === wanted) {
    outcome.status = 'done';
    outcome.messages.push(`${WORKFLOW_FILE} is up to date`);
  } else if (current !== null && !ctx.force) {
    outcome.status = 'manual';
    outcome.messages.push(
      current.includes(MARK)
        ? `${WORKFLOW_FILE} was changed since seq-test init wrote it: left alone (--force rewrites it)`
        : `${WORKFLOW_FILE} exists and was not written by seq-test init: left alone (--force replaces it)`,
    );
  } else {
    ctx.overlay.write(path, wanted, 'github-actions');
    outcome.messages.push(
      `${current === null ? 'create' : 'rewrite'} ${WORKFLOW_FILE}: concurrency group per workflow and ref, tests under seq-test run`,
    );
  }
  const others = detection.githubWorkflows.filter((f) => f !== WORKFLOW_FILE);
  if (others.length > 0) outcome.messages.push(`left as they are: ${others.join(', ')}`);
  return outcome;
}

/** GitLab: init never edits .gitlab-ci.yml (includes, anchors, templates); it prints a job to paste. */
export function planGitlabCi(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'gitlab-ci', status: 'manual', messages: [], snippets: [] };
  const options = ciOptions(ctx.root, detection);
  if (!options) {
    return { ...outcome, status: 'skipped', messages: ['no test command found: nothing for CI to run'] };
  }
  let current = '';
  try {
    current = readFileSync(join(ctx.root, '.gitlab-ci.yml'), 'utf8');
  } catch {}
  if (/\bseq-test\s+run\b/.test(current)) {
    return { ...outcome, status: 'done', messages: ['.gitlab-ci.yml already runs seq-test run'] };
  }
  outcome.messages.push('.gitlab-ci.yml is not edited: add this job to it');
  outcome.snippets.push({ title: '.gitlab-ci.yml', text: renderGitlabSnippet(options) });
  return outcome;
}
