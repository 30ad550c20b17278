import { constants } from 'node:os';
import {
  acquireLock,
  autoFromSettings,
  createToken,
  descendantsOf,
  endProcesses,
  endProcessesSync,
  extendChain,
  formatDuration,
  identityKey,
  identityOf,
  loadProjectConfig,
  onProcessExit,
  type RunProcess,
  type RunToken,
  runProcesses,
  say,
  TOKEN_ENV,
  trustedChain,
  WaitLine,
} from '@seq-test/core/internal';
import { jestConfigFile } from './config-file.js';
import { adoptEarlyLock } from './early-lock.js';
import { parentGone, stopParentWatch, watchParent } from './parent-watch.js';
import { type RunState, type Summary, shared } from './state.js';
import { describeSummary, isJestWorker, worthSaying } from './summary.js';

/**
 * One Jest run under the lock, owned by Jest's main process (the owner in every ticket and token is
 * process.pid): begins in our global setup, ends in our global teardown.
 *
 * Jest skips the global teardown in three cases, and each still ends right:
 *  - SIGINT/SIGTERM/SIGHUP (jest#6029): our handlers end the run's processes, leave the queue, then re-raise
 *    the signal so that Jest still dies of it (exit status 128+N for the shell);
 *  - process.exit without teardown (--bail on Jest 29, a failing global setup, an uncaught error): a process
 *    'exit' handler does the same synchronously;
 *  - SIGKILL, a crash of Node itself: nothing of ours runs; the next waiter finds our ticket dead and ends
 *    every process carrying our token (protocol, "Deciding" step 2), as for any dead holder.
 * SIGQUIT is left alone on purpose: if a test blocks the event loop, no JavaScript handler can run, and
 * Ctrl-\ still kills Jest at once (the case above then applies).
 */

const HANDLED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface BeginOptions {
  via: RunState['via'];
  rootDir: string;
  key?: string | undefined;
}

/** Joins the queue and resolves once we hold the lock; returns the current run if one is already held. */
export async function beginRun(options: BeginOptions): Promise<RunState> {
  const state = shared();
  if (state.run && !state.run.finished) return state.run;
  installExitHandler();
  const run: RunState = {
    via: options.via,
    disabled: process.env.SEQ_TEST_DISABLE === '1',
    aborter: new AbortController(),
    baseline: new Set(),
    previousChain: process.env[TOKEN_ENV],
    graceMs: 1000,
    signalHandlers: [],
    finished: false,
  };
  state.run = run;
  // package.json "seqTest" / .seqtestrc.json: key, slots and the reaping grace, as for `seq-test run`.
  // An explicit key (withSeqTest option, $SEQ_TEST_KEY) wins over the file.
  let settings: NonNullable<ReturnType<typeof loadProjectConfig>>['config'] = {};
  try {
    settings = loadProjectConfig(options.rootDir)?.config ?? {};
  } catch (error) {
    run.finished = true;
    throw error;
  }
  run.graceMs = settings.graceMs ?? 1000;
  const self = identityOf(process.pid);
  run.baseline = new Set(self ? descendantsOf(self).map(identityKey) : []);
  addSignalHandlers(run);
  if (run.disabled) {
    watchParent();
    // As `seq-test run` does: no lock, but the run's processes are still accounted for and reaped.
    say('SEQ_TEST_DISABLE=1: running without the lock');
    if (self) startRun(run, createToken(self));
    return run;
  }
  const key = options.key ?? (process.env.SEQ_TEST_KEY || settings.key);
  const early = adoptEarlyLock(key, options.rootDir); // taken while Jest evaluated the config
  if (early) {
    watchParent();
    run.lock = early;
    run.key = early.key;
    startRun(run, early.token);
    return run;
  }
  const waitLine = new WaitLine();
  // "slots": "auto": memory-aware admission, this Jest invocation's fingerprint being its argv, root and
  // config file.
  const argv = process.argv.slice(1);
  const config = jestConfigFile(argv.slice(1), options.rootDir);
  const auto = autoFromSettings(
    settings,
    { argv, cwd: options.rootDir, runner: 'jest', ...(config ? { config } : {}) },
    (message) => say(`warning: ${message}`),
  );
  run.auto = auto.holder;
  const acquiring = acquireLock({
    key,
    cwd: options.rootDir,
    slots: auto.slots,
    ...(auto.holder ? { admission: auto.holder.hook } : {}),
    command: commandLine(),
    signal: run.aborter.signal,
    onWait: (info) => waitLine.update(info),
    // Off a terminal the line is printed once: no reads of the queue on a timer while we wait.
    waitReportMs: waitLine.reportEveryMs,
    // While we wait the lock watches our parent (without a timer); the interval watch starts once we hold.
    onParentGone: parentGone,
    onWarning: (message) => say(`warning: ${message}`),
  });
  run.acquiring = acquiring;
  try {
    run.lock = await acquiring;
  } catch (error) {
    waitLine.done(undefined);
    removeSignalHandlers(run);
    run.finished = true;
    throw error;
  } finally {
    run.acquiring = undefined;
  }
  watchParent();
  run.key = run.lock.key;
  run.auto?.started(run.lock.queue, run.lock.ticket.name);
  waitLine.done(run.lock.waitedMs >= 1 ? `our turn after ${formatDuration(run.lock.waitedMs)}` : undefined);
  startRun(run, run.lock.token);
  return run;
}

/**
 * Everything Jest starts from now on (test files' children, workers of a custom runner, the project's own
 * global setup) carries our token: it is how leftovers are found, even after setsid or a double fork.
 */
function startRun(run: RunState, token: RunToken): void {
  run.token = token;
  process.env[TOKEN_ENV] = extendChain(trustedChain(run.previousChain), token);
}

/** Ends what the run left running (TERM, KILL after the grace), leaves the queue, prints the summary. */
export function finishRun(run: RunState, cause?: Summary['cause']): Promise<Summary> {
  if (!run.finishing) {
    run.finishing = (async () => {
      let ended: Summary['ended'] = [];
      try {
        const targets = leftovers(run);
        if (targets.length > 0) ended = await endProcesses(targets, run.graceMs);
      } catch (error) {
        say(`warning: could not end the run's processes: ${(error as Error).message}`);
      }
      // Whatever happened above, leave the queue.
      const summary = leave(run, ended, cause);
      report(summary);
      return summary;
    })();
  }
  return run.finishing;
}

/** The synchronous version, for a process 'exit' handler. */
function finishRunSync(run: RunState, cause: Summary['cause'], graceMs = run.graceMs): Summary {
  let ended: Summary['ended'] = [];
  try {
    ended = endProcessesSync(leftovers(run), graceMs);
  } catch (error) {
    say(`warning: could not end the run's processes: ${(error as Error).message}`);
  }
  const summary = leave(run, ended, cause);
  if (worthSaying(summary)) say(describeSummary(summary)); // not through the reporter: stderr must be written before Node exits
  return summary;
}

/** The processes of this run still alive: below Jest's main process or carrying our token, except Jest. */
function leftovers(run: RunState): RunProcess[] {
  const self = identityOf(process.pid);
  if (!run.token || !self || run.finished) return [];
  return runProcesses({ tokens: [run.token.value], root: self, exclude: run.baseline });
}

function leave(run: RunState, ended: Summary['ended'], cause: Summary['cause']): Summary {
  if (!run.finished) {
    run.finished = true;
    // Only a run that ended normally (no signal, no process.exit() mid-run) says what a whole run needs.
    run.auto?.finished(cause === undefined);
    run.lock?.release();
    if (run.token) {
      if (run.previousChain === undefined) delete process.env[TOKEN_ENV];
      else process.env[TOKEN_ENV] = run.previousChain;
    }
    removeSignalHandlers(run);
    stopParentWatch();
  }
  return {
    key: run.key,
    waitedMs: run.lock?.waitedMs ?? 0,
    nested: run.lock?.nested ?? false,
    disabled: run.disabled,
    ended: ended.filter((p) => !isJestWorker(p.command)),
    cause,
  };
}

function report(summary: Summary): void {
  if (!worthSaying(summary)) return;
  const reporter = shared().reporter;
  if (reporter) reporter.printSummary(summary);
  else say(describeSummary(summary));
}

function installExitHandler(): void {
  const state = shared();
  if (state.exitHandler) return;
  state.exitHandler = true;
  // Every 'reap' hook runs before the lock's 'release' hook (core's exit-hook registry): the next run
  // never starts while ours still has processes running.
  onProcessExit('reap', () => {
    const run = shared().run;
    if (run && !run.finished && run.token) finishRunSync(run, run.signalled ?? 'exit');
  });
}

function addSignalHandlers(run: RunState): void {
  for (const signal of HANDLED_SIGNALS) {
    const handler = () => void onSignal(run, signal);
    process.on(signal, handler);
    run.signalHandlers.push([signal, handler]);
  }
}

function removeSignalHandlers(run: RunState): void {
  for (const [signal, handler] of run.signalHandlers) process.off(signal, handler);
  run.signalHandlers = [];
}

async function onSignal(run: RunState, signal: NodeJS.Signals): Promise<void> {
  if (run.signalled) {
    // A second signal while we reap: no more grace.
    if (!run.finished && run.token) finishRunSync(run, signal, 0);
    reraise(run, signal);
    return;
  }
  run.signalled = signal;
  if (!run.token) {
    // Still waiting in the queue: withdraw the ticket (acquireLock does it when aborted), then die.
    run.aborter.abort(new Error(`interrupted by ${signal} while waiting for the lock`));
    await run.acquiring?.catch(() => {});
  } else {
    await finishRun(run, signal);
  }
  reraise(run, signal);
}

/** Dies of the signal as Jest would have without us; exits 128+N if another handler keeps the process up. */
function reraise(run: RunState, signal: NodeJS.Signals): void {
  removeSignalHandlers(run);
  setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000);
  process.kill(process.pid, signal);
}

/** What the ticket shows in `seq-test status` and in other waiters' queue line. */
function commandLine(): string {
  return ['jest', ...process.argv.slice(2)].join(' ');
}
