/**
 * Prepended to `test.globalSetup` by the plugin. Vitest loads this file through its module runner, i.e. as
 * a separate copy from the plugin's: it imports nothing and calls the per-process session the plugin
 * created (on globalThis), so both share one lock and one set of tokens.
 */
interface SessionApi {
  globalSetup(project: unknown): Promise<() => Promise<void>>;
}

export default async function setup(project: unknown): Promise<(() => Promise<void>) | undefined> {
  const state = (globalThis as unknown as Record<symbol, SessionApi | undefined>)[
    Symbol.for('@seq-test/vitest/session')
  ];
  if (!state) return undefined; // the plugin is not loaded in this process: nothing to do
  return state.globalSetup(project);
}
