import { signalIdentity } from '../identity.js';
import { driveEnding, endingPolicy } from '../ownership.js';
import type { OwnedProcess, RunTracker } from '../tracker.js';
import type { AttemptState } from './attempt-state.js';
import type { TreeSampler } from './sampling.js';
import { pause } from './timers.js';
import { type EndReason, plural, type ReapedProcess } from './types.js';

export interface TerminationContext {
  tracker: RunTracker | undefined;
  sampler: TreeSampler;
  state: AttemptState;
  graceMs: number;
  /** Whether a pid is the main command's (not listed as reaped: its status is the run's). */
  isMain: (pid: number) => boolean;
  narrate: (line: string) => void;
  notice: (line: string) => void;
}

/** How long apart the looks at the tree are during the grace period (a look can be a full sweep). */
const GRACE_POLL_MS = 50;

/**
 * Ends the run's tree: the first signal (TERM or the chosen one) to every owned process, newcomers during
 * the grace period included, then SIGKILL to what is left. Started once per attempt (the first reason
 * counts, see AttemptState.stopping); escalate() skips what is left of the grace period.
 */
export class TreeTermination {
  /** Every process seq-test signalled, except the main command. */
  readonly reaped = new Map<number, ReapedProcess>();
  private ending: Promise<void> | undefined;
  private escalating = false;
  private wakeEscalation!: () => void;
  private readonly escalated = new Promise<void>((resolve) => {
    this.wakeEscalation = resolve;
  });

  constructor(private readonly context: TerminationContext) {}

  get started(): boolean {
    return this.ending !== undefined;
  }

  /** Settles once the tree is gone (or could not be ended); undefined when ending never started. */
  get finished(): Promise<void> | undefined {
    return this.ending;
  }

  // The body starts on the next microtask, after `ending` is set: it samples, and a sample over the memory
  // limit asks to end the tree again, which must then see it already ending (it used to recurse until the
  // stack overflowed when the tree ignored the first signal).
  end(first: NodeJS.Signals, reason: EndReason): Promise<void> {
    if (this.context.state.stopping(reason)) this.ending = Promise.resolve().then(() => this.endNow(first, reason));
    return this.ending ?? Promise.resolve();
  }

  /** SIGKILL now (a second interrupt). */
  escalate(): void {
    this.escalating = true;
    this.wakeEscalation();
  }

  private send(target: OwnedProcess, signal: NodeJS.Signals, reason: EndReason): void {
    const { tracker, isMain, narrate } = this.context;
    const command = this.reaped.get(target.pid)?.command ?? tracker?.commandLine(target.pid) ?? `pid ${target.pid}`;
    if (!signalIdentity(target, signal)) return;
    if (!isMain(target.pid)) this.reaped.set(target.pid, { pid: target.pid, command, signal, reason });
    narrate(`sent ${signal} to ${target.pid} (${command})`);
  }

  // The policy is core's one (ownership.ts endingPolicy); what is live here: each look samples the tree
  // (newcomers forked during the grace period get the first signal too), and a second interrupt cuts the
  // grace period short.
  private async endNow(first: NodeJS.Signals, reason: EndReason): Promise<void> {
    const { tracker, sampler, graceMs, notice } = this.context;
    if (!tracker) return;
    const steps = endingPolicy<OwnedProcess>({
      first,
      graceMs,
      pollMs: GRACE_POLL_MS,
      send: (target, signal) => this.send(target, signal, reason),
      hurry: () => this.escalating,
    });
    const ended = await driveEnding(
      steps,
      async () => (await sampler.remaining()).alive,
      (ms) => (this.escalating ? pause(ms) : pause(ms, this.escalated)),
    );
    if (!ended)
      notice(`could not end ${plural(tracker.aliveNow().length, 'process', 'processes')} of the run even with SIGKILL`);
  }
}
