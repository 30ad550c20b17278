import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Absolute paths of the modules Jest loads by path. They point into dist/ whichever build (CJS or ESM)
 * of the config helper computes them; tsup's shims give the ESM build a __dirname.
 */
export const GLOBAL_SETUP = join(__dirname, 'global-setup.js');
export const GLOBAL_TEARDOWN = join(__dirname, 'global-teardown.js');
export const RUNNER = join(__dirname, 'runner.js');
export const REPORTER = join(__dirname, 'reporter.js');

export type OurModule = 'global-setup' | 'global-teardown' | 'runner' | 'reporter';

/**
 * Whether a config value names one of our modules: this copy's path, the package subpath
 * (`@seq-test/jest/runner`), or the same file of another copy of @seq-test/jest (a base config wrapped by
 * the copy another package depends on).
 */
export function isOurs(value: unknown, name: OurModule): boolean {
  if (typeof value !== 'string') return false;
  if (value === join(__dirname, `${name}.js`) || value === `@seq-test/jest/${name}`) return true;
  if (basename(value) !== `${name}.js` || basename(dirname(value)) !== 'dist') return false;
  try {
    const manifest = JSON.parse(readFileSync(join(dirname(dirname(value)), 'package.json'), 'utf8'));
    return manifest?.name === '@seq-test/jest';
  } catch {
    return false;
  }
}
