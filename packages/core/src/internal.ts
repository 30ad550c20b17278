// `@seq-test/core/internal`: the public API plus the internals that the first-party packages (the CLI, the
// Jest and Vitest integrations) share. Those are released together with core, in lockstep; nothing here
// is a stable API for anyone else, and it may change in any release.

export { assertSupportedPlatform } from './errors.js';
export { signalIdentity } from './identity.js';
export * from './index.js';
export { HandedOff, type HandOffPlan } from './lock/acquire.js';
export {
  CANCEL_GRACE_MS,
  type CancelOutcome,
  cancelRun,
  cancelRunByToken,
  type FoundRun,
  findRunToCancel,
} from './lock/cancel.js';
export { keyDirName, projectKey } from './lock/project-key.js';
export {
  AUTO_PROTOCOL_VERSION,
  HIGHEST_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  parseTicket,
  parseTicketName,
  type Ticket,
  type TicketParent,
  ticketFileName,
} from './lock/protocol.js';
export { type Decision, Queue, type QueueState } from './lock/queue.js';
export { liveRuns, visitQueues } from './lock/queues.js';
export {
  assertSafeDir,
  ensureStateDir,
  existingStateDir,
  inStateDirScope,
  STATE_DIR_ENV,
  type StateDirScope,
  stateDirPath,
  stateDirScope,
} from './lock/state-dir.js';
export { type QueueStatus, readStatus, type StatusReport, type TicketStatus } from './lock/status.js';
export * from './memory/index.js';
export { findLeftovers, groupWitnessed, sleepSync } from './ownership.js';
export { ignoresHangup, watchParentDeath } from './parent-watch.js';
export { isGone, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
export { PACKAGE_JSON_FIELD, PROJECT_CONFIG_KEYS, RC_FILE, validateProjectConfig } from './project-config.js';
export { resolveCommand } from './resolve-command.js';
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
export { chainHas, parseChain, parseToken } from './token.js';
export { type OwnedProcess, RunTracker, type SampleRequest, type TreeSample } from './tracker.js';
export { formatBytes, parseCount, parseSeconds, parseSize } from './units.js';
export { describeWait } from './wait-text.js';
