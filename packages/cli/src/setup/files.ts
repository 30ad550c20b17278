import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { stateDirPath } from '@seq-test/core/internal';
import { createTwoFilesPatch } from 'diff';
import { git, isInside } from './git.js';

/** One file as init would leave it. `before` is null for a new file. */
export interface FileChange {
  path: string;
  before: string | null;
  after: string;
  /** Mode for a new file, or to set on an existing one (hooks must be executable). */
  mode?: number;
  /** The steps that changed this file, for the summary. */
  steps: string[];
}

/**
 * The files as the planned steps would leave them, kept in memory: steps read and write through it, so that
 * two steps changing package.json compose, and nothing touches the disk until `apply`.
 */
export class Overlay {
  private readonly files = new Map<string, { content: string | null; mode?: number; steps: Set<string> }>();
  constructor(readonly root: string) {}

  read(path: string): string | null {
    const planned = this.files.get(path);
    if (planned) return planned.content;
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  }

  exists(path: string): boolean {
    return this.read(path) !== null;
  }

  write(path: string, content: string, step: string, mode?: number): void {
    const entry = this.files.get(path) ?? { content: null, steps: new Set<string>() };
    entry.content = content;
    if (mode !== undefined) entry.mode = mode;
    entry.steps.add(step);
    this.files.set(path, entry);
  }

  /** Files whose planned content or mode differs from the disk. */
  changes(): FileChange[] {
    const changes: FileChange[] = [];
    for (const [path, entry] of this.files) {
      if (entry.content === null) continue;
      let before: string | null = null;
      let mode: number | undefined;
      try {
        before = readFileSync(path, 'utf8');
        mode = statSync(path).mode & 0o777;
      } catch {}
      const modeDiffers = entry.mode !== undefined && mode !== undefined && (mode & entry.mode) !== entry.mode;
      if (before === entry.content && !modeDiffers) continue;
      changes.push({
        path,
        before,
        after: entry.content,
        ...(entry.mode !== undefined
          ? { mode: modeDiffers && mode !== undefined ? mode | entry.mode : entry.mode }
          : {}),
        steps: [...entry.steps],
      });
    }
    return changes.sort((a, b) => a.path.localeCompare(b.path));
  }
}

/** A unified diff of every change, paths relative to the project root. */
export function renderDiff(root: string, changes: FileChange[]): string {
  let out = '';
  for (const change of changes) {
    const name = relative(root, change.path) || change.path;
    if (change.before === change.after) {
      out += `mode ${name}: ${(change.mode ?? 0).toString(8)} (content unchanged)\n`;
      continue;
    }
    out += createTwoFilesPatch(
      change.before === null ? '/dev/null' : `a/${name}`,
      `b/${name}`,
      change.before ?? '',
      change.after,
      undefined,
      undefined,
      { context: 3 },
    ).replace(/^={67}\n/, '');
  }
  return out;
}

export interface Applied {
  path: string;
  /** Where the previous content was kept (outside the working tree), when it was kept. */
  backup?: string;
  created: boolean;
}

/** How version control covers a file init is about to change. */
export type Coverage =
  /** Committed as it is: the user's version control is the backup. */
  | 'clean'
  /** Tracked with uncommitted changes, or untracked: an edit would mix with (or lose) the user's work. */
  | 'uncommitted'
  /** Not under version control (ignored, inside .git such as .git/hooks, or no repository): backed up. */
  | 'unversioned';

/** How git covers each existing file: one `git status` for all of them. */
export function coverage(root: string, paths: string[]): Map<string, Coverage> {
  const result = new Map<string, Coverage>();
  if (paths.length === 0) return result;
  const gitDir = git(root, ['rev-parse', '--absolute-git-dir']);
  if (gitDir === undefined) {
    for (const path of paths) result.set(path, 'unversioned');
    return result;
  }
  const inside = paths.filter((p) => !isInside(gitDir, p) && isInside(root, p));
  const status = inside.length
    ? (git(root, [
        'status',
        '--porcelain=v1',
        '-z',
        '--ignored=matching',
        '--',
        ...inside.map((p) => relative(root, p)),
      ]) ?? '')
    : '';
  const states = new Map<string, string>();
  for (const entry of status.split('\0')) {
    if (entry.length > 3) states.set(join(root, entry.slice(3)), entry.slice(0, 2));
  }
  for (const path of paths) {
    if (!inside.includes(path)) result.set(path, 'unversioned');
    else {
      const state = states.get(path);
      result.set(path, state === undefined ? 'clean' : state === '!!' ? 'unversioned' : 'uncommitted');
    }
  }
  return result;
}

/** Where the previous versions of the files a run changes are kept: one directory per run, outside the tree. */
export function backupDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const project = createHash('sha256').update(root).digest('hex').slice(0, 12);
  return join(stateDirPath(env), 'init-backups', `${project}-${stamp}`);
}

/**
 * Writes the changes, each existing file replaced atomically (temp file + rename) keeping its mode. A file
 * changed on disk since it was planned is refused, not overwritten. Nothing is written next to the files:
 * the previous content of those listed in `backups` is copied under `backupRoot` (outside the tree) first.
 */
export function applyChanges(
  changes: FileChange[],
  options: { root: string; backups?: Set<string>; backupRoot?: string } = { root: '/' },
): Applied[] {
  for (const change of changes) {
    let now: string | null = null;
    try {
      now = readFileSync(change.path, 'utf8');
    } catch {}
    if (now !== change.before) {
      throw new Error(`${change.path} changed while seq-test init was running; nothing was written to it`);
    }
  }
  const applied: Applied[] = [];
  for (const original of changes) {
    // A symlinked file (a hook linked to a tracked script) is edited where it points; the link stays.
    const change = { ...original, path: linkTarget(original.path) };
    mkdirSync(dirname(change.path), { recursive: true });
    let backup: string | undefined;
    let mode = change.mode ?? 0o644;
    if (change.before !== null) {
      const current = statSync(change.path).mode & 0o777;
      mode = change.mode !== undefined ? current | change.mode : current;
      if (change.before !== change.after && options.backups?.has(original.path) && options.backupRoot) {
        backup = join(options.backupRoot, relativeOrAbsolute(options.root, original.path));
        mkdirSync(dirname(backup), { recursive: true, mode: 0o700 });
        writeFileSync(backup, change.before, { mode: current, flag: 'wx' });
      }
    }
    const temp = join(dirname(change.path), `.seq-test-tmp-${randomBytes(6).toString('hex')}`);
    writeFileSync(temp, change.after, { mode, flag: 'wx' });
    chmodSync(temp, mode);
    renameSync(temp, change.path);
    applied.push({ path: change.path, created: change.before === null, ...(backup ? { backup } : {}) });
  }
  return applied;
}

function relativeOrAbsolute(root: string, path: string): string {
  return isInside(root, path) ? relative(root, path) : join('_outside', path);
}

function linkTarget(path: string): string {
  try {
    return lstatSync(path).isSymbolicLink() ? realpathSync(path) : path;
  } catch {
    return path;
  }
}
