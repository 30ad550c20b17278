import { say, watchParentDeath } from '@seq-test/core/internal';
import { shared } from './state.js';

/**
 * Ends the run when the process that started Jest goes away (core's watchParentDeath): SIGTERM to
 * ourselves, which our signal handlers turn into the usual end (the run's processes ended, the lock
 * released, Jest dying of SIGTERM). The stop function lives in the shared state: our global setup starts
 * the watch, our global teardown (another bundle) stops it.
 */
export function watchParent(): void {
  const state = shared();
  if (state.stopParentWatch) return;
  state.stopParentWatch = watchParentDeath((parent) => {
    state.stopParentWatch = undefined;
    parentGone(parent);
  });
}

/**
 * What the watch does when the parent is gone; also acquireLock's onParentGone, which watches the parent
 * while we wait without a timer of its own (an idle waiter wakes for nothing).
 */
export function parentGone(parent: number): void {
  say(`the process that started Jest (pid ${parent}) is gone: ending the run`);
  process.kill(process.pid, 'SIGTERM');
}

export function stopParentWatch(): void {
  const state = shared();
  state.stopParentWatch?.();
  state.stopParentWatch = undefined;
}
