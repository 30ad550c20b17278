import { say } from '@seq-test/core';
import { isOurs } from './paths.js';
import { beginRun, finishRun } from './run.js';
import { once, shared, stashOf } from './state.js';
import type { JestGlobalConfig, JestProjectConfig } from './types.js';
import { runUserHook } from './user-hooks.js';

/**
 * Jest's globalSetup, set by withSeqTest() and by the preset. Runs in Jest's main process before any test
 * file: waits for the lock (the queue line shows who holds it), exports the run's token to everything Jest
 * starts from now on, then runs the project's own globalSetup, which so runs under the lock too.
 */
export default async function seqTestGlobalSetup(
  globalConfig: JestGlobalConfig,
  projectConfig: JestProjectConfig,
): Promise<void> {
  const state = shared();
  // Entered again from inside itself (a config that names our setup as "its own", however it got there):
  // the outer call already holds the lock and runs the user's hook; going round again would never end.
  if (state.inHook?.has('globalSetup')) return;
  const stash = stashOf(projectConfig);
  for (const runner of stash.customRunners ?? []) {
    if (once(`runner:${runner}`))
      say(`warning: runner "${runner}" is not jest-runner; its test files may still run in parallel`);
  }
  for (const project of stash.projectHooks ?? []) {
    if (once(`hooks:${project}`))
      say(
        `warning: project ${project}'s own globalSetup/globalTeardown run outside the lock (Jest runs them before the top-level ones); move them to the top level`,
      );
  }
  const run = await beginRun({ via: 'setup', rootDir: globalConfig.rootDir, key: stash.key });
  if (!stash.globalSetup || isOurs(stash.globalSetup, 'global-setup')) return;
  state.inHook = new Set([...(state.inHook ?? []), 'globalSetup']);
  try {
    await runUserHook('globalSetup', stash.globalSetup, globalConfig, projectConfig);
  } catch (error) {
    // Jest stops here without its teardown (and stays up in watch mode): do not keep the lock.
    await finishRun(run);
    throw error;
  } finally {
    state.inHook.delete('globalSetup');
  }
}
