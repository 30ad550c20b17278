import { accessSync, constants, existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import type { Detection } from './detect.js';
import { PRE_COMMIT_CONFIG } from './detect.js';
import type { HooksLayout } from './git.js';
import { auditManagedHooks, planManagedHooks } from './hook-managers.js';
import { addDevDependencies } from './package-json.js';
import { isPreCommitHook, queuePreCommitConfig } from './pre-commit.js';
import { hasGuard, hookGuard, insertGuard, isShellScript, renderHook } from './templates.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

/** Hooks init wraps: pre-commit always (created with --hook-command), pre-push when it exists. */
export const WRAPPED_HOOKS = ['pre-commit', 'pre-push'] as const;
/** Where a hook that is not a shell script is moved, to be run from a new shell hook. */
export const ORIGINAL_SUFFIX = '.seq-test-orig';

/** The file holding the user's own commands for a hook (husky: `.husky/<hook>`, else `<hooks dir>/<hook>`). */
export function hookScript(layout: HooksLayout, hook: string): string {
  return join(layout.scriptsDir, hook);
}

export function planGitHook(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'git-hook', status: 'done', messages: [], snippets: [] };
  const layout = detection.hooks;
  if (!detection.isGit || !layout) return { ...outcome, status: 'skipped', messages: ['not a git repository'] };
  if (detection.hookManager) {
    const managed = planManagedHooks(ctx, detection, detection.hookManager);
    if (managed.status === 'changed' || managed.messages.some((m) => m.endsWith('already runs under seq-test'))) {
      const added = addDevDependencies(ctx, detection, ['seq-test'], 'git-hook');
      if (added.length > 0) {
        managed.status = managed.status === 'manual' ? 'manual' : 'changed';
        managed.messages.push('add seq-test to devDependencies, so that npx finds it');
      }
    }
    return managed;
  }
  if (layout.hooksPathScope === 'global') {
    return {
      ...outcome,
      status: 'manual',
      messages: [
        `core.hooksPath is set outside this repository (${layout.hooksPath}): its hooks serve every repository, so init leaves them alone; put this block after the #! line of the hooks you want queued`,
      ],
      snippets: [{ title: 'hook block', text: hookGuard() }],
    };
  }
  const show = (path: string) => relative(ctx.root, path) || path;
  let wrote = false;
  // The pre-commit framework's source of truth is its config: its hooks are queued there (pre-commit.ts), and
  // the hook `pre-commit install` writes is left to it, unless a heavy hook cannot be queued in the config.
  const preCommit = detection.preCommitConfig ? queuePreCommitConfig(ctx, detection, 'git-hook') : undefined;
  // (Its messages only when this step changed the config: after the pre-commit step, they would be said twice.)
  if (preCommit?.changed) {
    outcome.messages.push(...preCommit.outcome.messages);
    outcome.snippets.push(...preCommit.outcome.snippets);
    if (preCommit.outcome.status === 'manual') outcome.status = 'manual';
    wrote = true;
  }
  for (const hook of WRAPPED_HOOKS) {
    const path = hookScript(layout, hook);
    const script = ctx.overlay.read(path);
    if (script !== null && preCommit && isPreCommitHook(script)) {
      if (preCommit.manual.length === 0) {
        outcome.messages.push(
          `${show(path)} is written by \`pre-commit install\` (which rewrites it), so it is left as it is: the queue is in ${PRE_COMMIT_CONFIG}`,
        );
        continue;
      }
      if (!hasGuard(script)) {
        outcome.messages.push(
          `${show(path)} is written by \`pre-commit install\`, but ${preCommit.manual.join(', ')} cannot be queued in ${PRE_COMMIT_CONFIG} (see seq-test init --pre-commit): the block queues the whole pre-commit run until the next \`pre-commit install\` removes it`,
        );
      }
    }
    if (script === null) {
      if (hook !== 'pre-commit') continue;
      if (ctx.hookCommand) {
        ctx.overlay.write(path, renderHook({ hook, body: ctx.hookCommand }), 'git-hook', 0o755);
        outcome.messages.push(`create ${show(path)} running \`${ctx.hookCommand}\` under seq-test run`);
        wrote = true;
      } else if (detection.preCommitConfig) {
        outcome.messages.push(
          `${PRE_COMMIT_CONFIG} exists but its git hook is not installed: \`pre-commit install\` installs it`,
        );
      } else {
        outcome.messages.push(
          `no ${hook} hook to wrap in ${show(layout.scriptsDir)} (--hook-command 'npm test' creates one)`,
        );
      }
      continue;
    }
    if (hasGuard(script)) {
      outcome.messages.push(`${show(path)} already runs under seq-test`);
      continue;
    }
    if (isShellScript(script)) {
      ctx.overlay.write(path, insertGuard(script), 'git-hook');
      outcome.messages.push(`${show(path)}: add the seq-test block at the top; the hook's own lines stay as they are`);
      wrote = true;
      continue;
    }
    // Not a shell script (Python, a binary, …): keep it under another name and run it from a shell hook.
    if (lstatSync(path).isSymbolicLink()) {
      outcome.status = 'manual';
      outcome.messages.push(
        `${show(path)} is a link to a script that is not a shell script: put the seq-test block in a shell hook that runs it`,
      );
      outcome.snippets.push({
        title: `${show(path)} (a shell hook in its place)`,
        text: renderHook({ hook, body: `exec ${JSON.stringify(realpathSync(path))} "$@"` }),
      });
      continue;
    }
    const original = `${path}${ORIGINAL_SUFFIX}`;
    const kept = ctx.overlay.read(original);
    if (kept !== null && kept !== script) {
      outcome.status = 'manual';
      outcome.messages.push(
        `${show(original)} exists and differs from ${show(path)}: refusing to overwrite it; move one of them away and run init again`,
      );
      continue;
    }
    const mode = statSync(path).mode & 0o777;
    ctx.overlay.write(original, script, 'git-hook', mode);
    ctx.overlay.write(
      path,
      renderHook({ hook, body: `exec "$(dirname -- "$0")/${hook}${ORIGINAL_SUFFIX}" "$@"` }),
      'git-hook',
      0o755,
    );
    outcome.messages.push(
      `${show(path)} is not a shell script: keep it as ${show(original)} and run it from a new ${hook} hook under seq-test`,
    );
    wrote = true;
  }
  if (wrote) {
    outcome.status = outcome.status === 'manual' ? 'manual' : 'changed';
  }
  const guarded = outcome.messages.some((m) => m.endsWith('already runs under seq-test'));
  if (wrote || guarded) {
    const added = addDevDependencies(ctx, detection, ['seq-test'], 'git-hook');
    if (added.length > 0) {
      outcome.status = 'changed';
      outcome.messages.push('add seq-test to devDependencies, so that hooks find node_modules/.bin/seq-test');
    }
  }
  if (!wrote && outcome.status === 'done' && outcome.messages.every((m) => m.startsWith('no '))) {
    outcome.status = 'skipped';
  }
  return outcome;
}

/** How the hook block finds seq-test: $SEQ_TEST_BIN, <top>/node_modules/.bin/seq-test, then PATH. */
export function seqTestReachable(root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SEQ_TEST_BIN) return env.SEQ_TEST_BIN;
  const local = join(root, 'node_modules', '.bin', 'seq-test');
  if (isExecutable(local)) return local;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'seq-test'))) return join(dir, 'seq-test');
  }
  return undefined;
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export function auditGitHooks(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  const layout = detection.hooks;
  if (!detection.isGit || !layout) return [];
  if (detection.hookManager) return auditManagedHooks(detection, detection.hookManager);
  const findings: Finding[] = [];
  const root = detection.root;
  const show = (path: string) => relative(root, path) || path;
  if (layout.hooksPathScope === 'global') {
    findings.push({
      severity: 'info',
      check: 'git-hook.global',
      message: `core.hooksPath is set outside this repository (${layout.hooksPath}); its hooks were checked as they are`,
    });
  }
  let guarded = 0;
  for (const hook of WRAPPED_HOOKS) {
    const path = hookScript(layout, hook);
    const script = read(path);
    if (script === undefined) continue;
    const runs = layout.manager === 'husky' || isExecutableFile(path);
    if (!runs) continue;
    if (hasGuard(script)) {
      guarded++;
      if (script.includes(`${hook}${ORIGINAL_SUFFIX}`) && !existsSync(`${path}${ORIGINAL_SUFFIX}`)) {
        findings.push({
          severity: 'error',
          check: 'git-hook.missing-original',
          file: show(path),
          message: `${show(path)} runs ${show(path)}${ORIGINAL_SUFFIX}, which is gone: the hook fails`,
          fix: `restore ${show(path)}${ORIGINAL_SUFFIX} (seq-test init kept the hook's previous version under the state dir's init-backups/), or delete ${show(path)}`,
        });
      }
      continue;
    }
    if (/\bseq-test\s+run\b/.test(script)) {
      guarded++;
      continue;
    }
    // A hook `pre-commit install` wrote runs the hooks of the config, where pre-commit.ts checks the queue.
    if (detection.preCommitConfig && isPreCommitHook(script)) continue;
    const replaced =
      isPreCommitHook(script) && hasGuard(read(`${path}.legacy`) ?? '')
        ? ` (\`pre-commit install\` replaced the seq-test hook and kept it as ${hook}.legacy)`
        : '';
    findings.push({
      severity: 'error',
      check: 'git-hook.bypass',
      file: show(path),
      message: `${show(path)} runs without seq-test${replaced}: hooks of commits made at the same time run at the same time`,
      fix: 'seq-test init --git-hook',
    });
  }
  if (guarded > 0 && !seqTestReachable(root)) {
    findings.push({
      severity: 'error',
      check: 'git-hook.seq-test-missing',
      message:
        'the hooks call seq-test, but it is neither in node_modules/.bin nor on PATH (nor $SEQ_TEST_BIN): commits will fail',
      fix: 'npm install -D seq-test (or npm install -g seq-test)',
    });
  }
  if (detection.preCommitConfig && read(hookScript(layout, 'pre-commit')) === undefined) {
    findings.push({
      severity: 'info',
      check: 'git-hook.pre-commit-not-installed',
      file: PRE_COMMIT_CONFIG,
      message: `${PRE_COMMIT_CONFIG} exists but no pre-commit git hook is installed: its hooks run only when called by hand`,
      fix: 'pre-commit install',
    });
  }
  return findings;
}

function isExecutableFile(path: string): boolean {
  return isExecutable(path);
}
