export { presetConfig, type SeqTestOptions, withSeqTest } from './config.js';
export { GLOBAL_SETUP, GLOBAL_TEARDOWN, REPORTER, RUNNER } from './paths.js';
export type { JestConfig } from './types.js';
