export { assertSupportedPlatform, EXIT, SeqTestError } from './errors.js';
export { forwardSignals } from './forward-signals.js';
export { identityOf, isAlive, type ProcessIdentity, signalIdentity } from './identity.js';
export { isGone, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
export { resolveCommand } from './resolve-command.js';
export {
  type AttemptResult,
  type EndReason,
  ExecController,
  type ExecOptions,
  type ExecResult,
  execTree,
  type ReapedProcess,
} from './runner.js';
export { parseSignal, type SignalSpec, signalName, signalNumber } from './signals.js';
export { subreaperPath } from './subreaper.js';
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
export { type OwnedProcess, RunTracker, type TreeSample } from './tracker.js';
export { formatBytes, formatDuration, parseCount, parseSeconds, parseSize } from './units.js';
