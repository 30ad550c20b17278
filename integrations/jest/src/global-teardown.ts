import { isOurs } from './paths.js';
import { finishRun } from './run.js';
import { shared, stashOf } from './state.js';
import type { JestGlobalConfig, JestProjectConfig } from './types.js';
import { runUserHook } from './user-hooks.js';

/**
 * Jest's globalTeardown, set by withSeqTest() and by the preset. Runs the project's own globalTeardown
 * first (it may stop servers its setup started, gracefully), then ends whatever the run still has running,
 * leaves the queue, and prints the summary line.
 */
export default async function seqTestGlobalTeardown(
  globalConfig: JestGlobalConfig,
  projectConfig: JestProjectConfig,
): Promise<void> {
  const state = shared();
  if (state.inHook?.has('globalTeardown')) return; // entered from inside itself: see global-setup.ts
  const stash = stashOf(projectConfig);
  const run = state.run;
  try {
    if (stash.globalTeardown && !isOurs(stash.globalTeardown, 'global-teardown')) {
      state.inHook = new Set([...(state.inHook ?? []), 'globalTeardown']);
      try {
        await runUserHook('globalTeardown', stash.globalTeardown, globalConfig, projectConfig);
      } finally {
        state.inHook.delete('globalTeardown');
      }
    }
  } finally {
    if (run && !run.finished && run.via === 'setup') await finishRun(run);
  }
}
