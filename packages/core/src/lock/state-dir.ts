import { lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { SeqTestError } from '../errors.js';

/** Names the state dir; every process of a run inherits it from the run (or inherits its absence). */
export const STATE_DIR_ENV = 'SEQ_TEST_STATE_DIR';

/**
 * The per-user private directory all queues live in (docs/PROTOCOL.md, "State dir"):
 * $SEQ_TEST_STATE_DIR, else $XDG_RUNTIME_DIR/seq-test, else ${TMPDIR:-/tmp}/seq-test-<uid>.
 */
export function stateDirPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env[STATE_DIR_ENV]) return env[STATE_DIR_ENV];
  if (env.XDG_RUNTIME_DIR && isOwnDir(env.XDG_RUNTIME_DIR)) return join(env.XDG_RUNTIME_DIR, 'seq-test');
  return join(env.TMPDIR || '/tmp', `seq-test-${uid()}`);
}

/** Creates the state dir (0700) if needed and refuses one that others could tamper with. For `run`. */
export function ensureStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = stateDirPath(env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // A refusal explains more than EEXIST or ENOTDIR would (a file, a dangling symlink in the way).
    if (kind(dir) !== 'absent') assertSafeDir(dir, env);
    throw new SeqTestError(
      `cannot create the state dir ${dir}: ${(error as NodeJS.ErrnoException).code}; ${privateDirFix(dir, env)}`,
    );
  }
  assertSafeDir(dir, env);
  return dir;
}

/**
 * The state dir for commands that only look or clean up (status, reap, monitor, cancel): validated exactly as
 * `run` validates it, but never created; undefined when it does not exist (nothing has ever queued).
 */
export function existingStateDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = stateDirPath(env);
  if (kind(dir) === 'absent') return undefined;
  assertSafeDir(dir, env);
  return dir;
}

/**
 * Refuses a state dir that is a symlink, not a directory, someone else's, or writable by others. The message
 * is "refusing state dir DIR: why; fix", and the fix is always safe to run as printed: `chmod 700` is
 * offered only for the default state dir seq-test itself names and creates, never for a directory
 * that SEQ_TEST_STATE_DIR points at (it may be /tmp, a project or a system directory).
 */
export function assertSafeDir(dir: string, env: NodeJS.ProcessEnv = process.env): void {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (error) {
    throw new SeqTestError(
      `refusing state dir ${dir}: cannot inspect it (${(error as NodeJS.ErrnoException).code}); ${privateDirFix(dir, env)}`,
    );
  }
  const refuse = (why: string, fix = privateDirFix(dir, env)) =>
    new SeqTestError(`refusing state dir ${dir}: ${why}; ${fix}`);
  if (stats.isSymbolicLink()) throw refuse(`it is a symlink (to ${linkTarget(dir)})`);
  if (!stats.isDirectory()) throw refuse('it is not a directory');
  if (stats.uid !== uid()) {
    throw refuse(
      `it belongs to ${userName(stats.uid)}, not to you (${userName(uid())}); another user may have created it to see or change your runs`,
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o7777).toString(8);
    const ours = dir === defaultStateDir(env) && (stats.mode & 0o1000) === 0;
    throw refuse(`mode ${mode} lets others write to it`, ours ? `run chmod 700 ${dir}` : undefined);
  }
}

/**
 * Whose leftovers a sweep that names no run (`reap`, `status`, `doctor`) answers for: the runs of one state
 * dir (docs/PROTOCOL.md, "Leftovers and state dirs"). The state dir is chosen by the environment alone, so a
 * run's processes carry what chose it: SEQ_TEST_STATE_DIR, or no such variable when the run used the default.
 */
export interface StateDirScope {
  /** The state dir, canonical (absolute, symlinks in its parents resolved). */
  dir: string;
  /** Whether it is the default state dir: then processes whose environment names none belong to it too. */
  isDefault: boolean;
}

export function stateDirScope(env: NodeJS.ProcessEnv = process.env): StateDirScope {
  const dir = canonical(stateDirPath(env));
  return { dir, isDefault: !env[STATE_DIR_ENV] || dir === canonical(defaultStateDir(env)) };
}

/**
 * Whether a process whose environment has SEQ_TEST_STATE_DIR=`named` (undefined or empty: it has none) ran
 * under `scope`'s state dir. A relative name is resolved against the process's working directory (`cwd`
 * answers it lazily; undefined when unknown: then it belongs to no scope a sweep can name).
 */
export function inStateDirScope(
  scope: StateDirScope,
  named: string | undefined,
  cwd: () => string | undefined = () => undefined,
): boolean {
  if (!named) return scope.isDefault;
  if (isAbsolute(named)) return canonical(named) === scope.dir;
  const base = cwd();
  return base !== undefined && canonical(resolve(base, named)) === scope.dir;
}

/** Absolute, with symlinks resolved where the path exists (one dir named two ways is one state dir). */
function canonical(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return resolve(path);
  }
}

/** The state dir seq-test picks when SEQ_TEST_STATE_DIR is not set. */
function defaultStateDir(env: NodeJS.ProcessEnv): string {
  return stateDirPath({ ...env, [STATE_DIR_ENV]: '' });
}

/** The fix for a state dir we must not touch: point SEQ_TEST_STATE_DIR at a new private one (created 0700). */
function privateDirFix(refused: string, env: NodeJS.ProcessEnv): string {
  const candidates = [defaultStateDir(env), join(homedir(), '.cache', 'seq-test')];
  const suggestion = candidates.find((c) => c !== refused && (kind(c) === 'absent' || isSafe(c))) ?? candidates[1];
  return `set SEQ_TEST_STATE_DIR to a private directory of yours (seq-test creates it), e.g. export SEQ_TEST_STATE_DIR=${suggestion}`;
}

function isSafe(dir: string): boolean {
  try {
    const stats = lstatSync(dir);
    return stats.isDirectory() && stats.uid === uid() && (stats.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function kind(path: string): 'absent' | 'present' {
  try {
    lstatSync(path);
    return 'present';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'present';
  }
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '?';
  }
}

/** "user NAME (uid N)" from /etc/passwd (Node has no getpwuid), "uid N" when the name is unknown. */
function userName(id: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , field] = line.split(':');
      if (name && Number(field) === id && field !== '') return `user ${name} (uid ${id})`;
    }
  } catch {}
  return `uid ${id}`;
}

function isOwnDir(dir: string): boolean {
  try {
    const stats = lstatSync(dir);
    return stats.isDirectory() && stats.uid === uid();
  } catch {
    return false;
  }
}

function uid(): number {
  return process.getuid?.() ?? 0;
}
