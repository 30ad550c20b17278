import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The names Jest looks for in a project's root, in its order (jest-config's JEST_CONFIG_EXT_ORDER). */
const CONFIG_NAMES = ['.js', '.ts', '.mjs', '.mts', '.cjs', '.cts', '.json'].map((ext) => `jest.config${ext}`);

/**
 * The config file of this Jest run, for the fingerprint of its memory history (`"slots": "auto"`): the
 * file given by `--config`/`-c` (resolved against the working directory), else the `jest.config.*` or
 * `package.json` in the root dir, as Jest finds it. Jest does not hand its config path to global setups.
 * Undefined for inline JSON (`--config '{…}'`: the arguments carry it whole) or when none is found.
 */
export function jestConfigFile(argv: readonly string[], rootDir: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const inline = /^(--config|-c)=(.*)$/.exec(arg);
    const value = inline ? inline[2] : arg === '--config' || arg === '-c' ? argv[i + 1] : undefined;
    if (value === undefined) continue;
    return value.trim().startsWith('{') ? undefined : resolve(value);
  }
  for (const name of [...CONFIG_NAMES, 'package.json']) {
    if (existsSync(join(rootDir, name))) return join(rootDir, name);
  }
  return undefined;
}
