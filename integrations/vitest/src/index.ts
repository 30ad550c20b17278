// A general process runner, in core since it serves any caller; re-exported for tests that import it here.
export { type RunCommandOptions, type RunCommandResult, runCommand } from '@seq-test/core';
export { GLOBAL_SETUP, seqTest } from './plugin.js';
export type { SeqTestOptions } from './session.js';
