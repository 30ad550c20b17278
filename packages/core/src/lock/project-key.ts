import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Which lock a command joins: --key, else $SEQ_TEST_KEY, else the real path of the enclosing git work tree
 * (the nearest directory holding a .git entry; no git process is spawned), else the real path of cwd.
 */
export function projectKey(options: { key?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const explicit = options.key ?? (options.env ?? process.env).SEQ_TEST_KEY;
  if (explicit !== undefined && explicit !== '') return explicit;
  const start = realpathSync(options.cwd ?? process.cwd());
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

/** Directory name of a key's queue: "q-" + the first 24 hex digits of SHA-256 of the key's UTF-8 bytes. */
export function keyDirName(key: string): string {
  return `q-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 24)}`;
}
