import { LogFile } from './attempt-log.js';
import { assertSupportedPlatform, SeqTestError } from './errors.js';
import { identityOf } from './identity.js';
import { checkOptions, EXEC_OPTION_RULES } from './options.js';
import { resolveCommand } from './resolve-command.js';
import { runAttempt } from './runner/attempt.js';
import { type Launch, type ParkedHelper, startParked } from './runner/launch.js';
import { pause } from './runner/timers.js';
import { type AttemptResult, type ExecOptions, type ExecResult, type PreparedExec, plural } from './runner/types.js';
import { signalNumber } from './signals.js';
import { subreaperPath } from './subreaper.js';
import { createToken, extendChain, type RunToken, TOKEN_ENV, trustedChain } from './token.js';

export { ExecController } from './runner/controller.js';
export type {
  AttemptResult,
  EndReason,
  ExecOptions,
  ExecResult,
  PreparedExec,
  ReapedProcess,
} from './runner/types.js';

/**
 * Runs a command and waits for its whole process tree, enforcing timeout, memory limit and retries.
 * Throws SeqTestError (exit 125/126/127) before spawning when the command cannot run at all.
 */
export async function execTree(options: ExecOptions): Promise<ExecResult> {
  return prepareExec(options).run();
}

/**
 * Validates a run and, with the subreaper helper, starts the helper already, parked: it waits for one byte
 * before it starts the command. A queued `seq-test run` calls this while it waits for the lock, so that
 * when its turn comes, starting the command costs a write instead of a process spawn (and the code on that
 * path has run once). Throws SeqTestError (exit 125/126/127) when the command cannot run at all.
 */
export function prepareExec(options: ExecOptions): PreparedExec {
  assertSupportedPlatform();
  checkOptions('execTree', options, EXEC_OPTION_RULES);
  const [file, ...args] = options.command;
  if (file === undefined) throw new SeqTestError('no command given: put it after --, e.g. seq-test exec -- npm test');
  // No cwd given: the command inherits ours as the kernel knows it (process.cwd() can be a lossy string).
  const cwd = options.cwd;
  const resolved = resolveCommand(file, cwd, (options.env ?? process.env).PATH);
  const self = identityOf(process.pid);
  if (!self) throw new SeqTestError('cannot read our own process entry (is /proc mounted?)');
  const token = options.token ?? createToken(self);
  const env = { ...(options.env ?? process.env) };
  env[TOKEN_ENV] = extendChain(trustedChain(env[TOKEN_ENV]), token);
  const launch: Launch = {
    file,
    resolved,
    args,
    cwd,
    env,
    helperPath: subreaperPath(options.env ?? process.env, options.onNotice),
    piped: Boolean(options.capture || options.logFile),
  };
  const parked = launch.helperPath ? startParked(launch) : undefined;
  // The first attempt is set up now, up to the start of the command, and waits for the turn.
  let giveTurn!: (start: boolean) => void;
  const turn = new Promise<boolean>((resolve) => {
    giveTurn = resolve;
  });
  const result = runAttempts(options, launch, token, parked, turn);
  result.catch(() => {}); // observed by run()'s caller; a cancelled run has no one to observe it
  let state: 'ready' | 'running' | 'cancelled' = 'ready';
  return {
    cancel() {
      if (state !== 'ready') return;
      state = 'cancelled';
      giveTurn(false);
    },
    async run() {
      if (state !== 'ready')
        throw new SeqTestError(`this run was already ${state === 'running' ? 'started' : 'cancelled'}`);
      state = 'running';
      giveTurn(true);
      return (await result) as ExecResult;
    },
  };
}

/** Runs every attempt; undefined when the turn was given up before the first one started. */
async function runAttempts(
  options: ExecOptions,
  launch: Launch,
  token: RunToken,
  parked: ParkedHelper | undefined,
  turn: Promise<boolean>,
): Promise<ExecResult | undefined> {
  const began = performance.now();
  const attempts: AttemptResult[] = [];
  const maxAttempts = 1 + (options.retries ?? 0);
  const controller = options.controller;
  const log = options.logFile
    ? new LogFile(options.logFile, (error) =>
        options.onNotice?.(
          `--log: cannot write ${options.logFile} (${error.code ?? error.message}); the run goes on without its log`,
        ),
      )
    : undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const first = attempt === 1;
    const result = await runAttempt(options, {
      ...launch,
      token,
      attempt,
      maxAttempts,
      parked: first ? parked : undefined,
      turn: first ? turn : undefined,
      log,
    });
    if (!result) return undefined;
    attempts.push(result);
    const failed = result.exitCode !== 0;
    if (!failed || result.interrupted || controller?.interrupted || attempt === maxAttempts) break;
    options.onNarrate?.(
      `attempt ${attempt} failed (exit ${result.exitCode}); ${plural(maxAttempts - attempt, 'retry', 'retries')} left`,
    );
    if (options.retryDelayMs) await pause(options.retryDelayMs, ...(controller ? [controller.interruption] : []));
    if (controller?.interrupted) break;
  }
  const last = attempts[attempts.length - 1] as AttemptResult;
  // Interrupted between two attempts: nothing was running, but the run still ends as the signal says.
  const interrupted = last.interrupted ?? controller?.interrupted ?? null;
  return {
    command: options.command,
    token: token.value,
    exitCode: interrupted && !last.interrupted ? 128 + signalNumber(interrupted) : last.exitCode,
    signal: last.signal,
    timedOut: last.timedOut,
    memoryExceeded: last.memoryExceeded,
    interrupted,
    durationMs: Math.round(performance.now() - began),
    peakRssBytes: Math.max(...attempts.map((a) => a.peakRssBytes)),
    peakProcesses: Math.max(...attempts.map((a) => a.peakProcesses)),
    attempts,
  };
}
