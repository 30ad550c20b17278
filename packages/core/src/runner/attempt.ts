import { openAttemptLog } from '../attempt-log.js';
import { onProcessExit } from '../exit-hooks.js';
import { signalIdentity } from '../identity.js';
import { endProcessesSync } from '../ownership.js';
import { formatBytes, formatDuration } from '../units.js';
import type { MainOutcome } from './attempt-state.js';
import { exitCodeOf, mainSignal } from './exit-code.js';
import { startCommand } from './launch.js';
import { awaitLeftovers } from './linger.js';
import { type AttemptPlan, wireForTurn } from './setup.js';
import { armTimeout } from './timeout.js';
import { pause } from './timers.js';
import { type AttemptResult, DEFAULTS, type ExecOptions, plural } from './types.js';

/** How long the tree gets between TERM and KILL when this process exits mid-attempt (nothing waits longer). */
const EXIT_GRACE_MS = 500;

/**
 * Whether no attempt can follow this one, seen when its main command ends: the last attempt, or one that
 * exited 0 and has no limit left that could still fail it while leftovers linger (a timeout or the memory
 * limit hit then makes the attempt fail, and a retry start).
 */
function isLastCommand(options: ExecOptions, plan: AttemptPlan, outcome: MainOutcome): boolean {
  if (plan.attempt >= plan.maxAttempts) return true;
  return outcome.kind === 'exited' && outcome.code === 0 && !options.timeoutMs && !options.maxMemoryBytes;
}

/** Runs one attempt to its end, leftovers included; undefined when its turn was given up before it started. */
export async function runAttempt(options: ExecOptions, plan: AttemptPlan): Promise<AttemptResult | undefined> {
  const killSignal = options.killSignal ?? DEFAULTS.killSignal;
  const narrate = (line: string) => options.onNarrate?.(line);
  const notice = (line: string) => options.onNotice?.(line);
  const wired = await wireForTurn(options, plan, notice, narrate, killSignal);
  if (!wired) return undefined;
  const { withHelper, child, output, main, state, rootPid, rootIdentity, tracker, sampler, termination } = wired;
  // If this process exits while the attempt runs (process.exit from a fault, or from a test runner that
  // hosts us), the tree is ended first, before any lock is released: core's exit-hook order.
  const forgetExitHook = tracker
    ? onProcessExit('reap', () => {
        const alive = tracker.aliveNow().map((p) => ({ ...p, command: p.comm, rssBytes: 0, token: plan.token.value }));
        endProcessesSync(alive, EXIT_GRACE_MS);
      })
    : undefined;
  let timeout: { clear(): void } | undefined;
  try {
    tracker?.begin();
    const startedAt = new Date();
    const began = performance.now();
    if (plan.log)
      output.log = openAttemptLog(plan.log, {
        ...plan,
        cwd: plan.cwd ?? process.cwd(),
        command: [plan.file, ...plan.args],
        startedAt,
      });
    narrate(
      `attempt ${plan.attempt}/${plan.maxAttempts}: ${[plan.file, ...plan.args].join(' ')} (token ${plan.token.value}, ${withHelper ? 'subreaper helper' : 'no subreaper helper'})`,
    );
    // Started only now that the tracker has begun: its pid mark must predate every process of the run.
    // (A freshly spawned helper is parked too: one way to start.)
    if (withHelper) startCommand(child);
    state.phase = 'running';

    options.controller?.listen((signal) => {
      // The first is forwarded to the whole tree, a second one kills it.
      const first = state.interrupt(signal);
      narrate(`received ${signal}${first ? ': forwarding it to the whole tree' : ' again: killing the whole tree'}`);
      void termination.end(signal, 'interrupt');
      if (!first) termination.escalate();
    });
    if (options.controller?.interrupted && !state.interrupted)
      options.controller.interrupt(options.controller.interrupted);

    timeout = armTimeout({
      timeoutMs: options.timeoutMs,
      killSignal,
      waitAll: Boolean(options.waitAll),
      state,
      termination,
      narrate,
      notice,
    });
    const sampling = sampler.whileRunning(() => state.phase === 'running', main.ended);

    const outcome = await main.ended;
    state.phase = 'lingering';
    const mainEndedAt = performance.now();
    if (options.onCommandEnded && isLastCommand(options, plan, outcome)) {
      try {
        options.onCommandEnded();
      } catch {}
    }
    narrate(
      `main process ended (${outcome.kind === 'signalled' ? `signal ${outcome.signal}` : `exit ${'code' in outcome ? outcome.code : null}`}) after ${formatDuration(mainEndedAt - began)}`,
    );
    await awaitLeftovers({
      sampler,
      termination,
      main,
      waitAll: Boolean(options.waitAll),
      lingerMs: options.lingerMs ?? DEFAULTS.lingerMs,
      lingerIdle: Boolean(options.lingerIdle),
      killSignal,
      mainEndedAt,
      narrate,
    });
    state.phase = 'finished';
    timeout?.clear();
    await sampling;
    options.controller?.listen(undefined);

    // The helper finishes by itself once it has nothing left to reap; make sure it does. (After its last
    // report it only returns from main(): its 'exit' is not waited for.)
    if (withHelper && !main.helperFinished && rootPid > 0) {
      await pause(1000, main.helperDone);
      if (!main.helperFinished) {
        signalIdentity(rootIdentity, 'SIGKILL');
        await main.exited;
      }
    }
    await output.drain();
    main.reports?.destroy();

    const reaped = termination.reaped;
    for (const leftover of reaped.values()) {
      if (leftover.reason === 'linger')
        notice(`ended leftover process ${leftover.pid} (${leftover.command}) with ${leftover.signal}`);
    }
    for (const problem of main.helperProblems) notice(problem);
    if (main.spawnError) notice(`could not start the command: ${main.spawnError.message}`);
    const end = state.endOf(outcome);
    if (end.kind === 'completed' && end.main.kind === 'lost')
      notice('lost track of the main process: it ended without a status (was the helper killed?)');
    const exitCode = exitCodeOf(end);
    // A command shorter than one sampling interval is never sampled; the helper's wait4() figures are a floor.
    const peakRssBytes = Math.max(sampler.peakRssBytes, main.helperPeakKb * 1024);
    const peakProcesses = main.pid !== undefined ? Math.max(sampler.peakProcesses, 1) : sampler.peakProcesses;
    const durationMs = Math.round(performance.now() - began);
    const result: AttemptResult = {
      attempt: plan.attempt,
      exitCode,
      signal: mainSignal(outcome),
      timedOut: end.kind === 'timed-out' || (end.kind === 'interrupted' && end.limit === 'timeout'),
      memoryExceeded: end.kind === 'memory-exceeded' || (end.kind === 'interrupted' && end.limit === 'memory'),
      interrupted: end.kind === 'interrupted' ? end.signal : null,
      startedAt: startedAt.toISOString(),
      durationMs,
      peakRssBytes,
      peakProcesses,
      reaped: [...reaped.values()],
    };
    if (options.capture) {
      const stdout = output.captured('stdout');
      const stderr = output.captured('stderr');
      result.stdout = stdout.text;
      result.stderr = stderr.text;
      result.stdoutDroppedBytes = stdout.droppedBytes;
      result.stderrDroppedBytes = stderr.droppedBytes;
    }
    narrate(
      `attempt ${plan.attempt} finished: exit ${exitCode} in ${formatDuration(durationMs)}; peak ${formatBytes(peakRssBytes)} in ${plural(peakProcesses, 'process', 'processes')}; ${reaped.size} ended by seq-test`,
    );
    output.log?.finish(result);
    return result;
  } catch (error) {
    // A fault of ours (never the command's): end what was started, so that seq-test still exits.
    options.controller?.listen(undefined);
    state.phase = 'finished';
    timeout?.clear();
    for (const process of tracker?.aliveNow() ?? []) signalIdentity(process, 'SIGKILL');
    if (rootPid > 0) signalIdentity(rootIdentity, 'SIGKILL');
    output.close();
    main.reports?.destroy();
    throw error;
  } finally {
    forgetExitHook?.();
  }
}
