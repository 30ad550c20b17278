import { formatDuration } from '../units.js';
import type { AttemptState } from './attempt-state.js';
import type { TreeTermination } from './terminate.js';
import { longTimeout } from './timers.js';

export interface TimeoutContext {
  timeoutMs: number | undefined;
  killSignal: NodeJS.Signals;
  waitAll: boolean;
  state: AttemptState;
  termination: TreeTermination;
  narrate: (line: string) => void;
  notice: (line: string) => void;
}

/**
 * --timeout: ends the whole tree when it fires while the main command runs (or, with --wait-all, while
 * leftovers run). Returns undefined when there is no timeout.
 */
export function armTimeout(context: TimeoutContext): { clear(): void } | undefined {
  const { timeoutMs, killSignal, state, termination } = context;
  if (!timeoutMs || timeoutMs <= 0) return undefined;
  return longTimeout(timeoutMs, () => {
    if (state.phase === 'finished' || termination.started) return;
    if (state.phase === 'lingering' && !context.waitAll) {
      // The command itself finished in time; what is left are leftovers, ended as they would be
      // when --linger runs out (and reported so), without turning the run into a timeout.
      context.narrate(`timeout after ${formatDuration(timeoutMs)}: ending the leftovers now`);
      void termination.end(killSignal, 'linger');
      return;
    }
    context.notice(`timeout after ${formatDuration(timeoutMs)}: sending ${killSignal} to the whole tree`);
    void termination.end(killSignal, 'timeout');
  });
}
