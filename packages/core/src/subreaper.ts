import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Path of the compiled subreaper helper (Linux), or undefined when it was not built or is disabled with
 * SEQ_TEST_NO_SUBREAPER=1. Without it seq-test still tracks the process group, the session, the token and
 * every descendant it sees; only an escapee that both empties its environment and leaves the session
 * before the next sweep is missed.
 */
export function subreaperPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.platform !== 'linux' || env.SEQ_TEST_NO_SUBREAPER === '1') return undefined;
  // Built next to the bundle in dist/; the second candidate serves tests that import the sources.
  for (const candidate of ['./seq-test-subreaper', '../dist/seq-test-subreaper']) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return undefined;
}
