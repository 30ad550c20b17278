import type { Overlay } from './files.js';

/** Which parts of a project `seq-test init` can set up; each is also a flag (`--vitest`, `--git-hook`, …). */
export type StepId =
  | 'config'
  | 'vitest'
  | 'jest'
  | 'pytest'
  | 'pre-commit'
  | 'git-hook'
  | 'github-actions'
  | 'gitlab-ci';

export const STEP_TITLES: Record<StepId, string> = {
  config: 'project defaults for seq-test run/exec (package.json "seqTest" or .seqtestrc.json)',
  vitest: 'Vitest: add the seqTest() plugin to the Vitest config',
  jest: 'Jest: wrap the Jest config with withSeqTest()',
  pytest: 'pytest: install the seq-test plugin (conftest.py)',
  'pre-commit':
    'pre-commit framework: hooks that run tests or type checkers under seq-test run (their entry), require_serial where it matters',
  'git-hook': 'git hooks: run the existing pre-commit (and pre-push) hook under seq-test run',
  'github-actions': 'GitHub Actions: a workflow with a concurrency group, tests under seq-test run',
  'gitlab-ci': 'GitLab CI: a job with a resource_group, tests under seq-test run (printed, to paste)',
};

/** What a step found and did, for the summary. */
export interface StepOutcome {
  id: StepId;
  /** `changed`: files will be / were written; `done`: already set up; `manual`: a snippet to paste; `skipped`. */
  status: 'changed' | 'done' | 'manual' | 'skipped';
  /** One line each, shown under the step. */
  messages: string[];
  /** Text to paste by hand, when a file could not be edited safely. */
  snippets: { title: string; text: string }[];
}

export interface StepContext {
  root: string;
  overlay: Overlay;
  /** Overwrite files init wrote before and the user changed since, and edit files with uncommitted changes. */
  force: boolean;
  /** The command a newly created git hook runs, when there is no hook to wrap. */
  hookCommand?: string;
  /** Values for the `config` step. */
  settings: Record<string, string | number>;
  /** Version range written into devDependencies. */
  versionRange: string;
}

export type Severity = 'error' | 'warning' | 'info';

/** One result of `seq-test doctor`. */
export interface Finding {
  severity: Severity;
  /** Short id of the check, stable for scripts: `vitest.integration`, `git-hook.bypass`, … */
  check: string;
  /** The file concerned, relative to the project root, when there is one. */
  file?: string;
  message: string;
  /** The command to run, or the edit to make, to fix it. */
  fix?: string;
}

/** One outcome for a step made of several parts (one per config file): manual wins over changed over done. */
export function mergeOutcomes(id: StepId, parts: StepOutcome[]): StepOutcome {
  const statuses = new Set(parts.map((p) => p.status));
  const status = statuses.has('manual')
    ? 'manual'
    : statuses.has('changed')
      ? 'changed'
      : statuses.has('done')
        ? 'done'
        : 'skipped';
  return {
    id,
    status,
    messages: parts.flatMap((p) => p.messages),
    snippets: parts.flatMap((p) => p.snippets),
  };
}
