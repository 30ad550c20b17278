export { assertSupportedPlatform, EXIT, SeqTestError } from './errors.js';
export { type ExitPhase, onProcessExit } from './exit-hooks.js';
export { FORWARDED_SIGNALS, forwardSignals } from './forward-signals.js';
export { identityOf, isAlive, type ProcessIdentity, signalIdentity } from './identity.js';
export {
  type AcquireOptions,
  type AdmissionHook,
  acquireLock,
  type LockHandle,
  type WaitInfo,
} from './lock/acquire.js';
export { type CancelOutcome, cancelWaitingTicket } from './lock/cancel.js';
export { keyDirName, projectKey } from './lock/project-key.js';
export {
  AUTO_PROTOCOL_VERSION,
  HIGHEST_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  parseTicket,
  parseTicketName,
  type Ticket,
  ticketFileName,
} from './lock/protocol.js';
export { type Decision, Queue, type QueueEntry, type QueueState } from './lock/queue.js';
export { assertSafeDir, ensureStateDir, existingStateDir, stateDirPath } from './lock/state-dir.js';
export { type QueueStatus, readStatus, type StatusReport, type TicketStatus } from './lock/status.js';
export * from './memory/index.js';
export { InvalidOptionError } from './options.js';
export {
  descendantsOf,
  type EndedProcess,
  endProcesses,
  endProcessesSync,
  findLeftovers,
  identityKey,
  type RunProcess,
  type RunQuery,
  reapLeftovers,
  runProcesses,
  sleepSync,
} from './ownership.js';
export { ignoresHangup, watchParentDeath } from './parent-watch.js';
export { isGone, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
export {
  type LoadedProjectConfig,
  loadProjectConfig,
  PACKAGE_JSON_FIELD,
  PROJECT_CONFIG_KEYS,
  type ProjectConfig,
  RC_FILE,
  validateProjectConfig,
} from './project-config.js';
export { resolveCommand } from './resolve-command.js';
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
export { parseSignal, type SignalSpec, signalName, signalNumber } from './signals.js';
export {
  chooseHelper,
  HELPER_DISABLE_ENV,
  HELPER_OVERRIDE_ENV,
  HELPER_PROTOCOL,
  type HelperCandidate,
  type HelperChoice,
  type HelperSource,
  helperPackageName,
  probeHelper,
  subreaperPath,
} from './subreaper.js';
export {
  chainHas,
  createToken,
  extendChain,
  isRunAlive,
  parseChain,
  parseToken,
  type RunToken,
  TOKEN_ENV,
} from './token.js';
export { type OwnedProcess, RunTracker, type SampleRequest, type TreeSample } from './tracker.js';
export { formatBytes, formatDuration, parseCount, parseSeconds, parseSize } from './units.js';
export { describeWait, SAY_PREFIX, WaitLine } from './wait-text.js';
