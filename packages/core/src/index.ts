// The public API of @seq-test/core: what an integration with another test runner needs, and nothing more.
// The lock: join the project's queue, hold, release (acquireLock). Runs: a command and its whole process
// tree (execTree, prepareExec, runCommand). Ownership: a run's processes and how they are ended
// (runProcesses, endProcesses, endProcessesSync), in the right order at process exit (onProcessExit).
// Tokens, identities, errors, the shared queue line and project settings.
// Internals shared by the first-party packages (CLI, Jest, Vitest) are in ./internal.ts, exported as
// `@seq-test/core/internal`: not a stable API.
export { EXIT, SeqTestError } from './errors.js';
export { type ExitPhase, onProcessExit } from './exit-hooks.js';
export { FORWARDED_SIGNALS, forwardSignals } from './forward-signals.js';
export { identityOf, isAlive, type ProcessIdentity } from './identity.js';
export {
  type AcquireOptions,
  type AdmissionHook,
  acquireLock,
  type LockHandle,
  type WaitInfo,
} from './lock/acquire.js';
export type { QueueEntry } from './lock/queue.js';
export { InvalidOptionError } from './options.js';
export {
  descendantsOf,
  type EndedProcess,
  endProcesses,
  endProcessesSync,
  identityKey,
  type RunProcess,
  type RunQuery,
  reapLeftovers,
  runProcesses,
} from './ownership.js';
export { type LoadedProjectConfig, loadProjectConfig, type ProjectConfig } from './project-config.js';
export { type RunCommandOptions, type RunCommandResult, runCommand } from './run-command.js';
export {
  type AttemptResult,
  type EndReason,
  ExecController,
  type ExecOptions,
  type ExecResult,
  execTree,
  type PreparedExec,
  prepareExec,
  type ReapedProcess,
} from './runner.js';
export { SAY_PREFIX, say } from './say.js';
export { createToken, extendChain, type RunToken, TOKEN_ENV, trustedChain } from './token.js';
export { formatDuration } from './units.js';
export { WaitLine } from './wait-text.js';
