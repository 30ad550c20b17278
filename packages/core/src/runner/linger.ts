import { formatDuration } from '../units.js';
import type { MainWatch } from './main-process.js';
import type { TreeSampler } from './sampling.js';
import type { TreeTermination } from './terminate.js';
import { pause } from './timers.js';
import { plural } from './types.js';

export interface LingerContext {
  sampler: TreeSampler;
  termination: TreeTermination;
  main: MainWatch;
  /** Wait for every leftover (bounded by the timeout) instead of lingerMs. */
  waitAll: boolean;
  lingerMs: number;
  killSignal: NodeJS.Signals;
  /** performance.now() when the main command ended. */
  mainEndedAt: number;
  narrate: (line: string) => void;
}

/**
 * After the main command: waits until nothing of the tree is left, ending the leftovers once --linger
 * runs out (unless --wait-all), or until an ending already under way (timeout, interrupt) is through.
 */
export async function awaitLeftovers(context: LingerContext): Promise<void> {
  const { sampler, termination, main, waitAll, lingerMs } = context;
  let announced = false;
  for (;;) {
    const ending = termination.finished;
    if (ending) {
      await ending;
      return;
    }
    const { alive, costMs } = await sampler.remaining();
    if (alive.length === 0) return;
    if (!announced) {
      announced = true;
      context.narrate(
        `${plural(alive.length, 'process', 'processes')} still running after the main one: ${waitAll ? 'waiting for them (--wait-all)' : `giving them ${formatDuration(lingerMs)}`}`,
      );
    }
    if (!waitAll && performance.now() - context.mainEndedAt >= lingerMs) {
      await termination.end(context.killSignal, 'linger');
      return;
    }
    // The helper finishes once nothing is left to reap, which ends the wait early.
    // (Once it has, helperDone has settled and would wake us at once: plain pauses from then on.)
    await pause(Math.max(25, costMs * 4), ...(main.helperFinished ? [] : [main.helperDone]));
  }
}
