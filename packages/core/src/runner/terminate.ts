import { signalIdentity } from '../identity.js';
import { identityKey } from '../ownership.js';
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

  private signalAll(signal: NodeJS.Signals, targets: OwnedProcess[], reason: EndReason): void {
    const { tracker, isMain, narrate } = this.context;
    for (const target of targets) {
      const command = this.reaped.get(target.pid)?.command ?? tracker?.commandLine(target.pid) ?? `pid ${target.pid}`;
      if (signalIdentity(target, signal)) {
        if (!isMain(target.pid)) this.reaped.set(target.pid, { pid: target.pid, command, signal, reason });
        narrate(`sent ${signal} to ${target.pid} (${command})`);
      }
    }
  }

  private async endNow(first: NodeJS.Signals, reason: EndReason): Promise<void> {
    const { tracker, sampler, graceMs, notice } = this.context;
    if (!tracker) return;
    if (first === 'SIGKILL') this.escalating = true;
    // Each process gets the first signal once (by pid and start time): a repeated SIGINT reads as
    // "force quit" to many test runners.
    const sentFirst = new Set<string>();
    const sendFirst = (targets: OwnedProcess[]) => {
      const fresh = targets.filter((p) => !sentFirst.has(identityKey(p)));
      for (const p of fresh) sentFirst.add(identityKey(p));
      this.signalAll(first, fresh, reason);
    };
    sendFirst(tracker.aliveNow());
    const deadline = performance.now() + graceMs;
    while (!this.escalating) {
      const { alive } = await sampler.remaining();
      if (alive.length === 0) return;
      // Newcomers forked during the grace period get the first signal too.
      sendFirst(alive);
      const left = deadline - performance.now();
      if (left <= 0) break;
      await pause(Math.min(50, left), this.escalated);
    }
    for (let round = 0; round < 200; round++) {
      const { alive } = await sampler.remaining();
      if (alive.length === 0) return;
      this.signalAll('SIGKILL', alive, reason);
      await pause(20);
    }
    notice(`could not end ${plural(tracker.aliveNow().length, 'process', 'processes')} of the run even with SIGKILL`);
  }
}
