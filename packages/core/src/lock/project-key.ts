import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Which lock a command joins: --key, else $SEQ_TEST_KEY, else the real path of the enclosing git work tree
 * (the nearest directory holding a .git entry; no git process is spawned), else the real path of cwd.
 *
 * Paths are walked as bytes: a directory whose name is not valid UTF-8 cannot be named by a JS string (each
 * invalid sequence reads as U+FFFD), so cwd is resolved from "." and only the key is decoded, the way the
 * Python implementation hashes it.
 */
export function projectKey(options: { key?: string | undefined; cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const explicit = options.key ?? (options.env ?? process.env).SEQ_TEST_KEY;
  if (explicit !== undefined && explicit !== '') return explicit;
  // realpath(3) itself (the JS realpathSync resolves "." through the lossy process.cwd()); latin1 maps each
  // byte to one character and back, so path functions work on the raw bytes.
  const start = realpathSync.native(options.cwd ?? '.', { encoding: 'buffer' }).toString('latin1');
  const bytes = (path: string) => Buffer.from(path, 'latin1');
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(bytes(join(dir, '.git')))) return bytes(dir).toString('utf8');
    if (dirname(dir) === dir) return bytes(start).toString('utf8');
  }
}

/** Directory name of a key's queue: "q-" + the first 24 hex digits of SHA-256 of the key's UTF-8 bytes. */
export function keyDirName(key: string): string {
  return `q-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 24)}`;
}
