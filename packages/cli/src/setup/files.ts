import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createTwoFilesPatch } from 'diff';

/** Suffix of the copy kept of every file init changes. */
export const BACKUP_SUFFIX = '.seq-test-backup';

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
  backup?: string;
  created: boolean;
}

/**
 * Writes the changes. Every existing file is first copied to `<file>.seq-test-backup` (or `.seq-test-backup.2`,
 * … when an older backup exists: a backup is never overwritten), then replaced atomically (temp file + rename),
 * keeping its mode. A file changed on disk since it was planned is refused, not overwritten.
 */
export function applyChanges(changes: FileChange[]): Applied[] {
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
      if (change.before !== change.after) {
        backup = freeBackupName(change.path);
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

function linkTarget(path: string): string {
  try {
    return lstatSync(path).isSymbolicLink() ? realpathSync(path) : path;
  } catch {
    return path;
  }
}

function freeBackupName(path: string): string {
  const first = `${path}${BACKUP_SUFFIX}`;
  if (!existsSync(first)) return first;
  for (let n = 2; ; n++) {
    const name = `${first}.${n}`;
    if (!existsSync(name)) return name;
  }
}
