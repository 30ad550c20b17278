import type { ChildProcess } from 'node:child_process';
import type { LogFile } from '../attempt-log.js';
import { identityOf, type ProcessIdentity } from '../identity.js';
import type { RunToken } from '../token.js';
import { RunTracker } from '../tracker.js';
import { formatBytes } from '../units.js';
import { AttemptState } from './attempt-state.js';
import { type Launch, type ParkedHelper, spawnChild, startParked } from './launch.js';
import { MainWatch } from './main-process.js';
import { OutputRelay } from './output.js';
import { TreeSampler } from './sampling.js';
import { TreeTermination } from './terminate.js';
import { DEFAULTS, type ExecOptions, plural } from './types.js';

export interface AttemptPlan extends Launch {
  token: RunToken;
  attempt: number;
  maxAttempts: number;
  /** The helper started ahead of time for this attempt, if any. */
  parked: ParkedHelper | undefined;
  /** Settles when the attempt may start (true) or is given up (false); absent: start at once. */
  turn: Promise<boolean> | undefined;
  /** --log, shared by the attempts of a run. */
  log: LogFile | undefined;
}

/** How often a parked helper that died while waiting is replaced before the run goes on without one. */
const MAX_PARK_RESTARTS = 3;

/**
 * Everything an attempt needs, set up for a child (listeners, tracker, sampler, termination) while it
 * waits for its turn, so that the turn only has to start it. A parked helper that dies during the wait
 * (killed from outside) is replaced by a fresh one, and after MAX_PARK_RESTARTS the run goes on without
 * one, so that the command still runs at its turn. Undefined when the turn was given up.
 */
export async function wireForTurn(
  options: ExecOptions,
  planned: AttemptPlan,
  notice: (line: string) => void,
  narrate: (line: string) => void,
  killSignal: NodeJS.Signals,
) {
  let plan = planned;
  let parked = plan.parked && !plan.parked.gone ? plan.parked : undefined;
  if (plan.parked && !parked) plan.parked.dismiss();
  let turnPending = plan.turn !== undefined;
  for (let restarts = 0; ; ) {
    // Without a parked helper there is nothing to set up ahead: wait for the turn, then spawn.
    if (!parked && turnPending) {
      if (!(await plan.turn)) return undefined;
      turnPending = false;
    }
    const withHelper = Boolean(plan.helperPath);
    const child = parked?.child ?? spawnChild(plan, withHelper);
    const wired = wire(options, plan, child, withHelper, notice, narrate, killSignal);
    if (!parked || !turnPending) return wired;
    // --- the turn ------------------------------------------------------------------------------------------
    // Everything above ran while we waited (listeners set, this code compiled); starting is what is left.
    // One sample now runs the sampling code once too (the parked helper has no children yet: it finds
    // nothing), so that the end of the run, which the next run in the queue waits for, runs warm code.
    wired.tracker?.sample({ full: true });
    const go = await Promise.race([plan.turn, parked.ended.then(() => 'gone' as const)]);
    if (go === false) {
      parked.dismiss();
      wired.output.close();
      return undefined;
    }
    if (go === true) turnPending = false;
    if (!parked.gone) return wired;
    wired.output.close();
    wired.main.reports?.destroy();
    parked.dismiss();
    restarts++;
    const replace = restarts <= MAX_PARK_RESTARTS;
    notice(
      `the parked subreaper helper (pid ${child.pid}) ended while the run waited; ${replace ? 'starting a fresh one' : 'going on without one'}`,
    );
    if (!replace) plan = { ...plan, helperPath: undefined };
    // Once the turn has come, a fresh helper is spawned and started at once (the loop's first branch).
    parked = replace && turnPending ? startParked(plan) : undefined;
  }
}

function wire(
  options: ExecOptions,
  plan: AttemptPlan,
  child: ChildProcess,
  withHelper: boolean,
  notice: (line: string) => void,
  narrate: (line: string) => void,
  killSignal: NodeJS.Signals,
) {
  const output = new OutputRelay(child, options);
  const main = new MainWatch(child, withHelper);
  const state = new AttemptState();

  const rootPid = child.pid ?? 0;
  const rootIdentity: ProcessIdentity = identityOf(rootPid) ?? {
    pid: rootPid,
    start: identityOf(process.pid)?.start ?? 0,
  };
  const tracker =
    rootPid > 0
      ? new RunTracker({
          token: plan.token.value,
          sessionId: rootPid,
          root: rootIdentity,
          helper: withHelper ? rootIdentity : undefined,
        })
      : undefined; // nothing was started (spawn failed): nothing to track, and session 0 is the kernel's
  const sampler = new TreeSampler(tracker, () => main.helperFinished && main.helperIsSubreaper);
  const termination = new TreeTermination({
    tracker,
    sampler,
    state,
    graceMs: options.graceMs ?? DEFAULTS.graceMs,
    isMain: (pid) => pid === main.pid,
    narrate,
    notice,
  });
  const maxMemory = options.maxMemoryBytes;
  if (maxMemory)
    sampler.onSample = (sample) => {
      if (sample.rssBytes <= maxMemory || termination.started) return;
      notice(
        `memory limit ${formatBytes(maxMemory)} exceeded: the tree uses ${formatBytes(sample.rssBytes)} in ${plural(sample.alive.length, 'process', 'processes')}; ending it`,
      );
      void termination.end(killSignal, 'memory');
    };

  return { withHelper, child, output, main, state, rootPid, rootIdentity, tracker, sampler, termination };
}
