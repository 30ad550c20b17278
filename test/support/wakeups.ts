import { readdirSync, readFileSync } from 'node:fs';

// Counting a waiter's wakeups (issue 13 item 12: idle waiters do no periodic work). Wakeups are counted, not
// timed: the sum of voluntary context switches of every thread of the waiter's tree over a window in which
// nothing changes in the queue. Used by test/lock/idle-waiters.test.ts (seq-test run), the Python lock's
// and the integrations' idle tests.

/** Every pid in the tree below `pid` (itself included). */
export function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    for (const task of safeList(`/proc/${all[i]}/task`)) {
      const children = safeRead(`/proc/${all[i]}/task/${task}/children`).trim();
      if (children) all.push(...children.split(' ').map(Number));
    }
  }
  return all;
}

/** Voluntary context switches (each one a sleep that ended: a wakeup) of every thread of every process. */
export function wakeups(pids: number[]): number {
  let sum = 0;
  for (const pid of pids)
    for (const task of safeList(`/proc/${pid}/task`)) {
      const match = /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(safeRead(`/proc/${pid}/task/${task}/status`));
      sum += match ? Number(match[1]) : 0;
    }
  return sum;
}

const safeList = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
const safeRead = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** At most this many wakeups in a quiet window: a late GC of a fresh Node may add one or two. */
export const QUIET_MAX = 3;

/**
 * Waits until the waiter's tree has a quiet window of 2 s (at most `QUIET_MAX` wakeups), trying up to
 * `windows` windows, and returns the fewest seen. A 100 ms poll makes >= 20 per window whatever the load; an
 * event-driven waiter makes none. The windows are a measurement, not a wait for something to happen:
 * nothing changes in the queue meanwhile.
 */
export async function quietest(pid: number, windows = 8): Promise<number> {
  let fewest = Infinity;
  for (let window = 0; window < windows && fewest > QUIET_MAX; window++) {
    const pids = tree(pid);
    const before = wakeups(pids);
    await pause(2000);
    fewest = Math.min(fewest, wakeups(pids) - before);
  }
  return fewest;
}
