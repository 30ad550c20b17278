import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

/** Runs git in `cwd`; undefined when git fails or is missing (not a repository, no such config, …). */
export function git(cwd: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

/** The repository's work-tree root, else undefined. */
export function gitTopLevel(cwd: string): string | undefined {
  const top = git(cwd, ['rev-parse', '--show-toplevel']);
  return top ? realpathSync(top) : undefined;
}

/** The project root init and doctor work on: the git top-level, else cwd. */
export function projectRoot(cwd: string): string {
  return gitTopLevel(cwd) ?? realpathSync(cwd);
}

export type HookManager = 'plain' | 'husky' | 'hooks-path';

export interface HooksLayout {
  /** The directory git runs hooks from (`git rev-parse --git-path hooks`). */
  hooksDir: string;
  /** core.hooksPath as configured, if any. */
  hooksPath?: string;
  /** Where core.hooksPath was set: `local` (this repository), or a global/system file. */
  hooksPathScope?: 'local' | 'global';
  manager: HookManager;
  /** Where the user's own hook scripts live (husky: `.husky/`, not the generated `.husky/_/`). */
  scriptsDir: string;
  /** A husky v9 layout (`.husky/_/h` runner) or husky v4–8 (`.husky/_/husky.sh`). */
  huskyVersion?: 'v9' | 'legacy';
}

/** How this repository's hooks are wired: plain .git/hooks, husky, or another core.hooksPath directory. */
export function hooksLayout(root: string): HooksLayout | undefined {
  const gitPath = git(root, ['rev-parse', '--git-path', 'hooks']);
  if (gitPath === undefined) return undefined;
  const hooksDir = resolve(root, gitPath);
  const hooksPath = git(root, ['config', 'core.hooksPath']);
  let hooksPathScope: 'local' | 'global' | undefined;
  if (hooksPath) {
    const origin = git(root, ['config', '--show-scope', 'core.hooksPath']) ?? '';
    hooksPathScope = /^(local|worktree)\b/.test(origin) ? 'local' : 'global';
  }
  if (!hooksPath) return { hooksDir, manager: 'plain', scriptsDir: hooksDir };
  // husky v9: core.hooksPath=.husky/_ holds generated stubs that run .husky/<hook> with `sh -e`.
  if (basename(hooksDir) === '_' && basename(dirname(hooksDir)) === '.husky') {
    return {
      hooksDir,
      hooksPath,
      hooksPathScope,
      manager: 'husky',
      scriptsDir: dirname(hooksDir),
      huskyVersion: 'v9',
    };
  }
  // husky v4-8: core.hooksPath=.husky holds the user's scripts, which source .husky/_/husky.sh.
  if (basename(hooksDir) === '.husky' || existsSync(join(hooksDir, '_', 'husky.sh'))) {
    return { hooksDir, hooksPath, hooksPathScope, manager: 'husky', scriptsDir: hooksDir, huskyVersion: 'legacy' };
  }
  return { hooksDir, hooksPath, hooksPathScope, manager: 'hooks-path', scriptsDir: hooksDir };
}

/** The current branch name, else the configured default, else `main`. */
export function defaultBranch(root: string): string {
  return (
    git(root, ['symbolic-ref', '--short', 'HEAD']) ??
    git(root, ['config', 'init.defaultBranch']) ??
    'main'
  ).trim();
}

export function isInside(parent: string, child: string): boolean {
  const path = resolve(child);
  return path === parent || path.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

export function absolute(root: string, path: string): string {
  return isAbsolute(path) ? path : join(root, path);
}
