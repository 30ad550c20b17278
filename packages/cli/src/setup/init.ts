import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { EXIT, SeqTestError } from '@seq-test/core';
import { planGithubActions, planGitlabCi } from './ci.js';
import { planConfig } from './config-step.js';
import { type Detection, detect } from './detect.js';
import { applyChanges, backupDir, coverage, type FileChange, Overlay, renderDiff } from './files.js';
import { projectRoot } from './git.js';
import { planGitHook } from './git-hooks.js';
import { planJest } from './jest.js';
import { planPreCommit } from './pre-commit.js';
import { planPytest } from './pytest.js';
import { STEP_TITLES, type StepContext, type StepId, type StepOutcome } from './types.js';
import { planVitest } from './vitest.js';

export interface InitOptions {
  yes?: boolean;
  dryRun?: boolean;
  force?: boolean;
  hookCommand?: string;
  vitest?: boolean;
  jest?: boolean;
  pytest?: boolean;
  preCommit?: boolean;
  gitHook?: boolean;
  githubActions?: boolean;
  gitlabCi?: boolean;
  timeout?: string;
  maxMemory?: string;
  slots?: string;
  key?: string;
  cwd?: string;
}

/** The order steps are planned and shown in; later steps see the files earlier ones planned. */
export const STEP_ORDER: StepId[] = [
  'config',
  'vitest',
  'jest',
  'pytest',
  'pre-commit',
  'git-hook',
  'github-actions',
  'gitlab-ci',
];

const FLAG: Record<StepId, keyof InitOptions | undefined> = {
  config: undefined,
  vitest: 'vitest',
  jest: 'jest',
  pytest: 'pytest',
  'pre-commit': 'preCommit',
  'git-hook': 'gitHook',
  'github-actions': 'githubActions',
  'gitlab-ci': 'gitlabCi',
};

/** Steps that fit the repository, as `--yes` applies them (GitHub Actions only when asked: it adds CI runs). */
export function defaultSteps(detection: Detection, options: InitOptions): StepId[] {
  const steps: StepId[] = [];
  if (settingsOf(options) && Object.keys(settingsOf(options)).length > 0) steps.push('config');
  if (detection.vitest.used) steps.push('vitest');
  if (detection.jest.used) steps.push('jest');
  if (detection.pytest.used) steps.push('pytest');
  if (detection.preCommitConfig) steps.push('pre-commit');
  const hooks = detection.hooks;
  const hookExists =
    hooks !== undefined && ['pre-commit', 'pre-push'].some((h) => existsSync(join(hooks.scriptsDir, h)));
  if (detection.isGit && (hookExists || options.hookCommand || detection.preCommitConfig || detection.hookManager))
    steps.push('git-hook');
  if (detection.gitlabCi) steps.push('gitlab-ci');
  return steps;
}

export function settingsOf(options: InitOptions): Record<string, string | number> {
  const settings: Record<string, string | number> = {};
  const number = (v: string) => (/^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v);
  if (options.key !== undefined) settings.key = options.key;
  if (options.slots !== undefined) settings.slots = number(options.slots);
  if (options.timeout !== undefined) settings.timeout = number(options.timeout);
  if (options.maxMemory !== undefined) settings.maxMemory = options.maxMemory;
  return settings;
}

function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function planSteps(root: string, detection: Detection, steps: StepId[], options: InitOptions) {
  const overlay = new Overlay(root);
  const ctx: StepContext = {
    root,
    overlay,
    force: Boolean(options.force),
    ...(options.hookCommand ? { hookCommand: options.hookCommand } : {}),
    settings: settingsOf(options),
    versionRange: `^${cliVersion()}`,
  };
  const outcomes: StepOutcome[] = [];
  for (const id of STEP_ORDER.filter((s) => steps.includes(s))) {
    switch (id) {
      case 'config':
        outcomes.push(planConfig(ctx, detection));
        break;
      case 'vitest':
        outcomes.push(planVitest(ctx, detection));
        break;
      case 'jest':
        outcomes.push(planJest(ctx, detection));
        break;
      case 'pytest':
        outcomes.push(await planPytest(ctx, detection));
        break;
      case 'pre-commit':
        outcomes.push(planPreCommit(ctx, detection));
        break;
      case 'git-hook':
        outcomes.push(planGitHook(ctx, detection));
        break;
      case 'github-actions':
        outcomes.push(planGithubActions(ctx, detection));
        break;
      case 'gitlab-ci':
        outcomes.push(planGitlabCi(ctx, detection));
        break;
    }
  }
  return { outcomes, changes: overlay.changes() };
}

const MARK: Record<StepOutcome['status'], string> = { changed: '+', done: '✓', manual: '!', skipped: '-' };

function describeDetection(detection: Detection): string[] {
  const lines: string[] = [];
  const add = (label: string, value: string | undefined) => value && lines.push(`  ${label.padEnd(16)}${value}`);
  add('Vitest', detection.vitest.used ? detection.vitest.reasons.join(', ') : undefined);
  add('Jest', detection.jest.used ? detection.jest.reasons.join(', ') : undefined);
  add('pytest', detection.pytest.used ? detection.pytest.reasons.join(', ') : undefined);
  add('pre-commit', detection.preCommitConfig);
  const hooks = detection.hooks;
  const hookFiles = hooks ? ['pre-commit', 'pre-push'].filter((h) => existsSync(join(hooks.scriptsDir, h))) : [];
  if (detection.hookManager) {
    add('git hooks', `${detection.hookManager.kind} (${detection.hookManager.config})`);
  } else if (hooks && (hooks.hooksPath || hookFiles.length > 0)) {
    add(
      'git hooks',
      hooks.manager === 'husky'
        ? `husky (${hooks.huskyVersion}), core.hooksPath=${hooks.hooksPath}`
        : hooks.hooksPath
          ? `core.hooksPath=${hooks.hooksPath}${hooks.hooksPathScope === 'global' ? ' (global)' : ''}`
          : relative(detection.root, hooks.hooksDir),
    );
    if (hookFiles.length > 0) add('', `hooks: ${hookFiles.join(', ')}`);
  }
  add('GitHub Actions', detection.githubWorkflows.length > 0 ? detection.githubWorkflows.join(', ') : undefined);
  add('GitLab CI', detection.gitlabCi);
  if (lines.length === 0) lines.push('  nothing: no test runner, hook manager or CI configuration found');
  return lines;
}

function report(outcomes: StepOutcome[], out: (line: string) => void): void {
  for (const outcome of outcomes) {
    out(`${MARK[outcome.status]} ${STEP_TITLES[outcome.id]}`);
    for (const message of outcome.messages) out(`    ${message}`);
    for (const snippet of outcome.snippets) {
      out(`    paste into ${snippet.title}:`);
      for (const line of snippet.text.replace(/\n$/, '').split('\n')) out(`      ${line}`);
    }
  }
}

interface Io {
  out: (line: string) => void;
  interactive: boolean;
}

/** `seq-test init`; returns the exit code. */
export async function runInit(options: InitOptions, io: Io): Promise<number> {
  const root = projectRoot(options.cwd ?? process.cwd());
  const detection = detect(root);
  const { out } = io;
  out(`seq-test init in ${root}`);
  out('found:');
  for (const line of describeDetection(detection)) out(line);
  out('');

  const explicit = STEP_ORDER.filter((id) => {
    const flag = FLAG[id];
    return flag !== undefined && Boolean(options[flag]);
  });
  if (options.hookCommand && !explicit.includes('git-hook')) explicit.push('git-hook');
  const settings = settingsOf(options);
  if (Object.keys(settings).length > 0) explicit.unshift('config');
  let steps: StepId[];
  let mustConfirm = false;
  if (explicit.length > 0) {
    steps = explicit;
  } else if (options.yes || options.dryRun) {
    steps = defaultSteps(detection, options);
  } else if (io.interactive) {
    const chosen = await choose(detection, options);
    if (!chosen) return 130;
    steps = chosen.steps;
    Object.assign(options, chosen.settings);
    mustConfirm = true;
  } else {
    // No terminal to ask on (CI, a pipe): show what --yes would do, change nothing, and say how to go on.
    steps = defaultSteps(detection, options);
    const { outcomes, changes } = await planSteps(root, detection, steps, options);
    report(outcomes, out);
    out('');
    if (changes.length === 0) {
      out('nothing to change: everything that applies is already set up');
      return 0;
    }
    out(`would change: ${changes.map((c) => relative(root, c.path)).join(', ')}`);
    throw new SeqTestError(
      'no terminal to ask on, so nothing was changed: run `seq-test init --yes` to apply the steps above, pick steps with flags (--vitest, --git-hook, …), or add --dry-run to see the diff',
      EXIT.USAGE,
    );
  }

  const { outcomes, changes } = await planSteps(root, detection, steps, options);
  report(outcomes, out);
  out('');
  if (steps.length === 0) {
    out('nothing to do: no step applies to this project (see `seq-test init --help` for the steps)');
    return 0;
  }
  const manual = outcomes.filter((o) => o.status === 'manual').length;
  const leftToYou = manual > 0 ? `; ${manual} step(s) marked ! need the edit shown above` : '';
  if (changes.length === 0) {
    out(manual > 0 ? `nothing written${leftToYou}` : 'nothing to change: everything selected is already set up');
    return 0;
  }
  // The user's version control is the backup: a file with uncommitted changes is not edited without --force
  // (its previous content then goes to the state dir); files git does not cover are backed up there too.
  const covered = coverage(
    root,
    changes.filter((c) => c.before !== null).map((c) => c.path),
  );
  const uncommitted = [...covered].filter(([, state]) => state === 'uncommitted').map(([path]) => path);
  const backups = new Set(
    [...covered]
      .filter(([, state]) => state === 'unversioned' || (options.force && state === 'uncommitted'))
      .map(([path]) => path),
  );
  const refusal =
    uncommitted.length > 0 && !options.force
      ? `${uncommitted.map((p) => relative(root, p)).join(', ')} ${uncommitted.length === 1 ? 'has' : 'have'} uncommitted changes: commit or stash them first, or pass --force (the current content is then kept in seq-test's state dir)`
      : undefined;
  if (options.dryRun) {
    out(renderDiff(root, changes).replace(/\n$/, ''));
    out('');
    if (refusal) out(`without --force, init would refuse: ${refusal}`);
    out(`dry run: ${changes.length} file(s) would change; nothing was written${leftToYou}`);
    return 0;
  }
  if (refusal) throw new SeqTestError(`nothing was written: ${refusal}`, EXIT.USAGE);
  if (mustConfirm) {
    out(summarise(root, changes));
    out('(seq-test init --dry-run prints the full diff)');
    const { confirm } = await import('@inquirer/prompts');
    const go = await confirm({
      message: `Write these ${changes.length} file(s)?`,
      default: true,
    }).catch(() => undefined);
    if (!go) {
      out('nothing written');
      return go === undefined ? 130 : 0;
    }
  }
  const backupRoot = backups.size > 0 ? backupDir(root) : undefined;
  let applied: ReturnType<typeof applyChanges>;
  try {
    applied = applyChanges(changes, { root, backups, ...(backupRoot ? { backupRoot } : {}) });
  } catch (error) {
    throw new SeqTestError((error as Error).message);
  }
  for (const file of applied) {
    out(`${file.created ? 'created' : 'updated'} ${relative(root, file.path)}`);
  }
  if (backupRoot && applied.some((f) => f.backup)) out(`previous content kept outside the tree, in ${backupRoot}`);
  if (manual > 0) out(`left to you: ${manual} step(s) marked ! need the edit shown above`);
  nextSteps(changes, detection, out);
  return 0;
}

/**
 * The changes in a few lines for the prompt: a diff of the files the user wrote, a count for generated files
 * (a whole new module is a wall of text nobody reads before answering).
 */
function summarise(root: string, changes: FileChange[]): string {
  const lines: string[] = [];
  const small = changes.filter((c) => c.before !== null || c.after.split('\n').length <= 40);
  const big = changes.filter((c) => !small.includes(c));
  if (small.length > 0) lines.push(renderDiff(root, small).replace(/\n$/, ''));
  for (const change of big) {
    lines.push(`new file ${relative(root, change.path)} (${change.after.split('\n').length - 1} lines, generated)`);
  }
  return lines.join('\n');
}

function nextSteps(changes: FileChange[], detection: Detection, out: (line: string) => void): void {
  const pkg = changes.find((c) => c.path === detection.packageJson?.path);
  const lines: string[] = [];
  if (pkg && /"(@seq-test\/[a-z]+|seq-test)"\s*:/.test(pkg.after) && pkg.before !== pkg.after) {
    lines.push(`${`${detection.packageManager} install`.padEnd(18)}(installs the packages added to devDependencies)`);
  }
  lines.push(`${'seq-test doctor'.padEnd(18)}(checks the result)`);
  out('');
  out('next:');
  for (const line of lines) out(`  ${line}`);
}

/** The interactive part: which steps, and optional project defaults. Undefined when cancelled. */
async function choose(
  detection: Detection,
  options: InitOptions,
): Promise<{ steps: StepId[]; settings: Partial<InitOptions> } | undefined> {
  const prompts = await import('@inquirer/prompts');
  const defaults = new Set(defaultSteps(detection, options));
  try {
    const steps = await prompts.checkbox<StepId>({
      message: 'Set up (space toggles, enter confirms)',
      choices: STEP_ORDER.filter((id) => id !== 'config').map((id) => ({
        name: STEP_TITLES[id],
        value: id,
        checked: defaults.has(id),
      })),
    });
    const settings: Partial<InitOptions> = {};
    const wantDefaults = await prompts.confirm({
      message: 'Set project defaults for seq-test run (timeout, memory limit)?',
      default: false,
    });
    if (wantDefaults) {
      const timeout = await prompts.input({
        message: 'Timeout in seconds for a whole run (empty: none)',
        default: options.timeout ?? '',
        validate: (v) => v === '' || /^\d+(\.\d+)?$/.test(v) || 'a number of seconds, such as 600',
      });
      const maxMemory = await prompts.input({
        message: 'Memory limit for a run’s whole process tree, such as 4G (empty: none)',
        default: options.maxMemory ?? '',
        validate: (v) => v === '' || /^\d+(\.\d+)?\s*[KMGT]?$/i.test(v) || 'a size such as 512M or 4G',
      });
      if (timeout) settings.timeout = timeout;
      if (maxMemory) settings.maxMemory = maxMemory;
    }
    const all = [...steps];
    if (Object.keys(settingsOf({ ...options, ...settings })).length > 0) all.unshift('config');
    return { steps: all, settings };
  } catch (error) {
    if ((error as Error).name === 'ExitPromptError') return undefined;
    throw error;
  }
}
