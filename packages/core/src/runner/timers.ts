/** setTimeout's limit: a longer delay fires at once (Node warns and uses 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Waits `ms` or until one of `wake` settles, whichever comes first, and clears its timer either way:
 * a timer left behind by a lost race would keep the process alive after the run (up to a second per run).
 */
export function pause(ms: number, ...wake: Promise<unknown>[]): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    timer = setTimeout(done, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    for (const promise of wake) promise.then(done, done);
  });
}

/** A timeout that also works past setTimeout's ~24.8-day limit (re-armed in steps). */
export function longTimeout(ms: number, fire: () => void): { clear(): void } {
  const deadline = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = deadline - performance.now();
    if (left <= 0) fire();
    else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  timer = setTimeout(arm, Math.min(ms, MAX_TIMER_MS));
  return { clear: () => clearTimeout(timer) };
}
