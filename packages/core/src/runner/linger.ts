import type { ProcessInfo } from '../proc/index.js';
import { formatDuration } from '../units.js';
import type { MainWatch } from './main-process.js';
import type { TreeSampler } from './sampling.js';
import type { TreeTermination } from './terminate.js';
import { pause } from './timers.js';
import { plural } from './types.js';

/**
 * How long leftovers found idle get before they are ended: long enough for a process that exits on its
 * parent's EOF (a `tee`, a log reader) to do so by itself, and not be reported as ended.
 */
export const IDLE_SETTLE_MS = 200;

export interface LingerContext {
  sampler: TreeSampler;
  termination: TreeTermination;
  main: MainWatch;
  /** Wait for every leftover (bounded by the timeout) instead of lingerMs. */
  waitAll: boolean;
  lingerMs: number;
  /** Give idle leftovers the full lingerMs too (--linger-idle) instead of ending them after IDLE_SETTLE_MS. */
  lingerIdle: boolean;
  killSignal: NodeJS.Signals;
  /** performance.now() when the main command ended. */
  mainEndedAt: number;
  narrate: (line: string) => void;
}

/**
 * After the main command: waits until nothing of the tree is left, ending the leftovers once --linger
 * runs out (unless --wait-all), or until an ending already under way (timeout, interrupt) is through.
 * Leftovers that are all idle are ended after IDLE_SETTLE_MS instead (see endIfIdle).
 */
export async function awaitLeftovers(context: LingerContext): Promise<void> {
  const { sampler, termination, main, waitAll, lingerMs } = context;
  let announced = false;
  let idleChecked = waitAll || context.lingerIdle || lingerMs <= IDLE_SETTLE_MS;
  for (;;) {
    const ending = termination.finished;
    if (ending) {
      await ending;
      return;
    }
    const { alive, costMs } = await sampler.remaining();
    if (alive.length === 0) return;
    if (!idleChecked) {
      idleChecked = true;
      const idle = await endIfIdle(context, alive);
      if (idle === 'done') return;
      if (idle === 'no longer idle') {
        announced = true; // already said, with the full linger
        continue;
      }
    }
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
    await pause(Math.max(25, costMs * 4), ...helperWake(main));
  }
}

function helperWake(main: MainWatch): Promise<unknown>[] {
  return main.helperFinished ? [] : [main.helperDone];
}

/**
 * Linger is for work that ends by itself after the main command. A leftover that existed and used no CPU
 * for the whole `lingerMs` before the main command ended is not winding down, and waiting changes nothing:
 * when every leftover is such, they are ended after IDLE_SETTLE_MS (still reason `linger`). Whether they
 * are is judged from the samples taken while the command ran, and once more after the settle; when one is
 * not idle, or it cannot be told (no sample old enough, no CPU times on this platform), the whole tree
 * gets the full linger as before. `done`: the wait is over (ended here, or nothing left).
 */
async function endIfIdle(
  context: LingerContext,
  found: ProcessInfo[],
): Promise<'done' | 'not idle' | 'no longer idle'> {
  const { sampler, termination, main, lingerMs, mainEndedAt, narrate } = context;
  const idleEnough = (since: number | undefined): since is number =>
    since !== undefined && since <= mainEndedAt - lingerMs;
  const idleFrom = sampler.idleSince(found);
  const count = (n: number) => plural(n, 'process', 'processes');
  if (!idleEnough(idleFrom)) return 'not idle';
  narrate(
    `${count(found.length)} still running after the main one, idle for ${formatDuration(performance.now() - idleFrom)}: ending ${found.length === 1 ? 'it' : 'them'}`,
  );
  await pause(IDLE_SETTLE_MS, ...helperWake(main));
  const ending = termination.finished;
  if (ending) {
    await ending;
    return 'done';
  }
  const { alive } = await sampler.remaining();
  if (alive.length === 0) return 'done';
  if (idleEnough(sampler.idleSince(alive))) {
    await termination.end(context.killSignal, 'linger');
    return 'done';
  }
  narrate(
    `${count(alive.length)} still running after the main one, no longer idle: giving them ${formatDuration(lingerMs)}`,
  );
  return 'no longer idle';
}
