import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SeqTestError } from '../errors.js';

/**
 * The per-user private directory all queues live in (docs/PROTOCOL.md, "State dir"):
 * $SEQ_TEST_STATE_DIR, else $XDG_RUNTIME_DIR/seq-test, else ${TMPDIR:-/tmp}/seq-test-<uid>.
 */
export function stateDirPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEQ_TEST_STATE_DIR) return env.SEQ_TEST_STATE_DIR;
  if (env.XDG_RUNTIME_DIR && isOwnDir(env.XDG_RUNTIME_DIR)) return join(env.XDG_RUNTIME_DIR, 'seq-test');
  return join(env.TMPDIR || '/tmp', `seq-test-${uid()}`);
}

/** Creates the state dir (0700) if needed and refuses one that others could tamper with. */
export function ensureStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = stateDirPath(env);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new SeqTestError(`cannot create the state dir ${dir}: ${(error as NodeJS.ErrnoException).code}`);
  }
  assertSafeDir(dir);
  return dir;
}

export function assertSafeDir(dir: string): void {
  const stats = lstatSync(dir);
  const fix = `remove it or set SEQ_TEST_STATE_DIR to a private directory`;
  if (stats.isSymbolicLink()) throw new SeqTestError(`refusing state dir ${dir}: it is a symlink; ${fix}`);
  if (!stats.isDirectory()) throw new SeqTestError(`refusing state dir ${dir}: it is not a directory; ${fix}`);
  if (stats.uid !== uid()) {
    throw new SeqTestError(
      `refusing state dir ${dir}: it belongs to uid ${stats.uid}, not to you (uid ${uid()}); ${fix}`,
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new SeqTestError(
      `refusing state dir ${dir}: mode ${(stats.mode & 0o777).toString(8)} lets others write to it; run chmod 700 ${dir}`,
    );
  }
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
