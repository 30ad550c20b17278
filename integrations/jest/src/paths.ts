import { join } from 'node:path';

/**
 * Absolute paths of the modules Jest loads by path. They point into dist/ whichever build (CJS or ESM)
 * of the config helper computes them; tsup's shims give the ESM build a __dirname.
 */
export const GLOBAL_SETUP = join(__dirname, 'global-setup.js');
export const GLOBAL_TEARDOWN = join(__dirname, 'global-teardown.js');
export const RUNNER = join(__dirname, 'runner.js');
export const REPORTER = join(__dirname, 'reporter.js');
