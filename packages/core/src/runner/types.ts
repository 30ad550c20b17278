import type { RunToken } from '../token.js';
import type { ExecController } from './controller.js';

export interface ExecOptions {
  /** The command and its arguments. */
  command: string[];
  cwd?: string;
  /** Environment of the command (default: ours). The run token is added to it. */
  env?: NodeJS.ProcessEnv;
  /** End the whole tree after this long (0 or undefined: never). Bounds `waitAll` too. */
  timeoutMs?: number;
  /** First signal sent to the tree on timeout, memory limit and linger expiry (default SIGTERM). */
  killSignal?: NodeJS.Signals;
  /** How long after the first signal SIGKILL follows (default 5000). */
  graceMs?: number;
  /**
   * How long leftovers may outlive the main command before they are ended (default 3000). Leftovers that
   * all existed and used no CPU for that long before the main command ended are ended after 200 ms instead.
   */
  lingerMs?: number;
  /** Give idle leftovers the full lingerMs too (the behaviour before idle leftovers were told apart). */
  lingerIdle?: boolean;
  /** Wait for every leftover however long it takes (bounded by timeoutMs) instead of lingerMs. */
  waitAll?: boolean;
  /** End the tree when its total resident memory exceeds this many bytes. */
  maxMemoryBytes?: number;
  /** Extra attempts after a non-zero exit or a timeout (default 0). */
  retries?: number;
  retryDelayMs?: number;
  /** Keep stdout/stderr in the result (for --json). */
  capture?: boolean;
  /** Echo the command's stdout/stderr live (default true for both). */
  echoStdout?: boolean;
  echoStderr?: boolean;
  /** Append a readable record per attempt to this file. */
  logFile?: string;
  /** Run token to use (the lock passes its ticket's); a fresh one otherwise. */
  token?: RunToken;
  /** Progress narration (--verbose). */
  onNarrate?: (line: string) => void;
  /** Things the user must hear about: leftovers ended, limits hit. */
  onNotice?: (line: string) => void;
  /**
   * Called once the main command has ended and no further attempt will start (the last attempt, or one
   * that exited 0 with no timeout or memory limit that could still fail it): leftovers may still run
   * (`lingerMs`, `waitAll`). `seq-test run --slots auto` says so in its ticket. A throw is ignored.
   */
  onCommandEnded?: () => void;
  /** Lets the caller interrupt the run (signal forwarding). */
  controller?: ExecController;
}

export type EndReason = 'linger' | 'timeout' | 'memory' | 'interrupt';

export interface ReapedProcess {
  pid: number;
  command: string;
  /** The last signal sent to it. */
  signal: NodeJS.Signals;
  reason: EndReason;
}

/** How a run, or one attempt of it, ended. */
export interface RunOutcome {
  /** What seq-test exits with. */
  exitCode: number;
  /** The signal that ended the main command, if one did. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  memoryExceeded: boolean;
  /** The signal seq-test received and forwarded, if the run was interrupted. */
  interrupted: NodeJS.Signals | null;
  durationMs: number;
  peakRssBytes: number;
  peakProcesses: number;
}

export interface AttemptResult extends RunOutcome {
  attempt: number;
  startedAt: string;
  /** Processes seq-test ended: leftovers after the main command (reason "linger") and the tree on timeout, memory or interrupt. */
  reaped: ReapedProcess[];
  /** With `capture`: the end of each stream, CAPTURE_LIMIT_BYTES (16 MiB) at most. */
  stdout?: string;
  stderr?: string;
  /** With `capture`: how many bytes of the stream came before what `stdout`/`stderr` kept. */
  stdoutDroppedBytes?: number;
  stderrDroppedBytes?: number;
}

export interface ExecResult extends RunOutcome {
  command: string[];
  token: string;
  attempts: AttemptResult[];
}

/**
 * A run made ready ahead of its turn (see prepareExec). Call run() or cancel(): until then its parked helper
 * waits, and keeps the Node process alive.
 */
export interface PreparedExec {
  /** Starts the command and waits for its whole tree, like execTree. Call once. */
  run(): Promise<ExecResult>;
  /** Gives the turn up before run(): the waiting helper exits and nothing was started. Safe to repeat. */
  cancel(): void;
}

export const DEFAULTS = { killSignal: 'SIGTERM' as NodeJS.Signals, graceMs: 5000, lingerMs: 3000 };

export const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
