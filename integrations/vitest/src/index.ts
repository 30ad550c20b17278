export { GLOBAL_SETUP, seqTest } from './plugin.js';
export { type RunCommandOptions, type RunCommandResult, runCommand } from './run-command.js';
export type { SeqTestOptions } from './session.js';
