import { readFileSync } from 'node:fs';

/** How often a parent is checked where nothing tells us of its end. */
export const PARENT_CHECK_MS = 500;

/**
 * Notices this process being re-parented: the process that started it is gone (`timeout 60 npx jest` kills
 * npx and leaves Jest running on its own, holding the lock for a result nobody will read). The runner
 * integrations then end their run, as the CLI's helper ends `seq-test run`'s command when seq-test dies.
 *
 * Never when the process was detached on purpose: one that ignores SIGHUP (started under `nohup`) or whose
 * parent is already init, nor with SEQ_TEST_ORPHAN=keep. Linux only (re-parenting is visible in ppid
 * everywhere, but the SIGHUP check reads /proc). Returns a function that stops watching.
 */
export function watchParentDeath(onGone: (parent: number) => void, intervalMs = PARENT_CHECK_MS): () => void {
  const parent = parentToWatch();
  if (parent === undefined) return () => {};
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The parent whose end watchParentDeath would notice (the rules above), or undefined where it would not. */
export function parentToWatch(): number | undefined {
  const parent = process.ppid;
  if (process.platform !== 'linux' || process.env.SEQ_TEST_ORPHAN === 'keep' || parent <= 1 || ignoresHangup()) {
    return undefined;
  }
  return parent;
}

/** SIGHUP (signal 1) in this process's ignored set: started under nohup, detached on purpose. */
export function ignoresHangup(): boolean {
  try {
    const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
  } catch {
    return false;
  }
}
