import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Detection } from './detect.js';
import { readText, safeList } from './detect.js';
import { defaultBranch } from './git.js';
import { type CiOptions, renderGithubWorkflow, renderGitlabSnippet } from './templates.js';
import type { StepContext, StepOutcome } from './types.js';

export const WORKFLOW_FILE = join('.github', 'workflows', 'seq-test.yml');
const MARK = 'Written by `seq-test init`';

/** What the repository's own workflows do, for a new workflow to do the same. */
export interface WorkflowConventions {
  /** `uses:` values by action name, as written there (a SHA pin keeps its `# vX` comment). */
  uses: Record<string, string>;
  /** Whether any action is pinned by a full commit SHA. */
  pinsBySha: boolean;
  /** Python versions its matrices or setup steps name. */
  pythonVersions: string[];
  /** uv: uv.lock, astral-sh/setup-uv, or `uv` commands. */
  uv: boolean;
}

export function workflowConventions(root: string, detection: Detection): WorkflowConventions {
  const conventions: WorkflowConventions = { uses: {}, pinsBySha: false, pythonVersions: [], uv: false };
  const versions = new Set<string>();
  for (const file of detection.githubWorkflows.filter((f) => f !== WORKFLOW_FILE)) {
    const text = readText(join(root, file)) ?? '';
    for (const match of text.matchAll(/^[ \t]*(?:-[ \t]+)?uses:[ \t]*["']?([^\s"'#]+)["']?([ \t]+#[^\n]*)?$/gm)) {
      const value = match[1] as string;
      const [action, ref = ''] = value.split('@');
      if (!action || action.startsWith('./') || action.startsWith('docker://')) continue;
      const sha = /^[0-9a-f]{40}$/.test(ref);
      if (sha) conventions.pinsBySha = true;
      // The first pin seen wins; a SHA pin wins over a tag.
      const known = conventions.uses[action];
      if (!known || (sha && !/@[0-9a-f]{40}/.test(known))) {
        conventions.uses[action] = `${value}${match[2] ? ` ${match[2].trim()}` : ''}`;
      }
    }
    if (/\buv (sync|run|pip)\b|astral-sh\/setup-uv/.test(text)) conventions.uv = true;
    try {
      collectPythonVersions(parseYaml(text), versions);
    } catch {}
  }
  if (existsSync(join(root, 'uv.lock'))) conventions.uv = true;
  conventions.pythonVersions = [...versions];
  return conventions;
}

function collectPythonVersions(node: unknown, into: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectPythonVersions(item, into);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'python-version') {
      for (const v of [value].flat()) {
        if ((typeof v === 'string' || typeof v === 'number') && /^\d+\.\d+/.test(String(v))) into.add(String(v));
      }
    } else collectPythonVersions(value, into);
  }
}

/** What CI should run, from what the repository uses. */
export function ciOptions(root: string, detection: Detection): CiOptions | undefined {
  const conventions = workflowConventions(root, detection);
  const options: CiOptions = { branch: detection.isGit ? defaultBranch(root) : 'main', uses: conventions.uses };
  if (detection.packageJson && detection.testScript) {
    const pm = detection.packageManager;
    options.node = { packageManager: pm, testCommand: pm === 'bun' ? 'bun run test' : `${pm} test` };
  }
  if (detection.pytest.used && conventions.uv) {
    options.python = {
      install: 'uv sync',
      testCommand: 'uv run pytest',
      uv: true,
      ...(conventions.pythonVersions.length > 0 ? { versions: conventions.pythonVersions } : {}),
    };
  } else if (detection.pytest.used) {
    const requirements = safeList(root).filter((f) => /^requirements.*\.txt$/.test(f));
    const parts = ['python -m pip install'];
    let pyproject = false;
    try {
      pyproject = /^\s*\[project\]/m.test(readFileSync(join(root, 'pyproject.toml'), 'utf8'));
    } catch {}
    if (pyproject) parts.push('-e .');
    for (const file of requirements) parts.push(`-r ${file}`);
    parts.push('pytest');
    options.python = {
      install: parts.join(' '),
      testCommand: 'python -m pytest',
      ...(conventions.pythonVersions.length > 0 ? { versions: conventions.pythonVersions } : {}),
    };
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
  if (others.length > 0) {
    outcome.messages.push(`left as they are: ${others.join(', ')}; the new workflow follows their action pins`);
    const conventions = workflowConventions(ctx.root, detection);
    const unpinned = [...wanted.matchAll(/uses: ([^@\s]+)@(\S+)/g)]
      .filter((m) => !/^[0-9a-f]{40}$/.test(m[2] as string))
      .map((m) => m[1]);
    if (conventions.pinsBySha && unpinned.length > 0) {
      outcome.messages.push(
        `your workflows pin actions by commit SHA; ${unpinned.join(', ')} appear in none of them, so they are pinned by tag here: pin them by SHA (init cannot look SHAs up offline)`,
      );
    }
  }
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
