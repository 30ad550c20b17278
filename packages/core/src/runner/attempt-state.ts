import type { EndReason } from './types.js';

/** How the main command ended, as far as seq-test could tell. */
export type MainOutcome =
  | { kind: 'exited'; code: number }
  | { kind: 'signalled'; signal: NodeJS.Signals }
  /** It could not be started (exit 127 not found, 126 otherwise). */
  | { kind: 'not-started'; error: NodeJS.ErrnoException; code: number }
  /** The helper went away without a status: killed from outside. */
  | { kind: 'lost' };

/**
 * How an attempt ended: one value, decided once at its end (see endOf), instead of a flag per cause.
 * `completed` covers a command that ran its course, leftovers ended after --linger included.
 */
export type AttemptEnd =
  | { kind: 'completed'; main: MainOutcome }
  | { kind: 'timed-out'; main: MainOutcome }
  | { kind: 'memory-exceeded'; main: MainOutcome }
  /** `limit`: the limit that had already started ending the tree when the interrupt came. */
  | { kind: 'interrupted'; signal: NodeJS.Signals; main: MainOutcome; limit: 'timeout' | 'memory' | undefined };

/**
 * Where an attempt is: `parked` (set up, waiting for its turn), `running` (the main command is alive),
 * `lingering` (it ended; leftovers may still run), `finished`. Alongside, why seq-test started ending the
 * tree (the first reason counts: a timeout that fires while the tree is being ended for the memory limit
 * changes nothing) and the first signal seq-test received and forwarded (it always counts).
 */
export class AttemptState {
  phase: 'parked' | 'running' | 'lingering' | 'finished' = 'parked';
  private stopReason: EndReason | undefined;
  private interruptSignal: NodeJS.Signals | undefined;

  /** Records why the tree is being ended; false (and nothing recorded) when it already is. */
  stopping(reason: EndReason): boolean {
    if (this.stopReason) return false;
    this.stopReason = reason;
    return true;
  }

  get stopped(): EndReason | undefined {
    return this.stopReason;
  }

  /** Records an interrupt; true for the first one. */
  interrupt(signal: NodeJS.Signals): boolean {
    if (this.interruptSignal) return false;
    this.interruptSignal = signal;
    return true;
  }

  get interrupted(): NodeJS.Signals | undefined {
    return this.interruptSignal;
  }

  endOf(main: MainOutcome): AttemptEnd {
    const limit = this.stopReason === 'timeout' || this.stopReason === 'memory' ? this.stopReason : undefined;
    if (this.interruptSignal) return { kind: 'interrupted', signal: this.interruptSignal, main, limit };
    if (limit === 'timeout') return { kind: 'timed-out', main };
    if (limit === 'memory') return { kind: 'memory-exceeded', main };
    return { kind: 'completed', main };
  }
}
