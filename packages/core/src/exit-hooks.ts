/**
 * What must happen when this process exits, in one order: first the run's processes are ended ('reap'),
 * then its place in the queue is given up ('release'), so that the next run never starts while a dead
 * run's leftovers still run (docs/PROTOCOL.md). Nothing asynchronous runs at that point: hooks are
 * synchronous.
 *
 * One process 'exit' listener serves every hook, put first in line once (Vitest 3 calls process.exit()
 * from inside its own 'exit' listener, and the listeners after it never run). The registry lives on
 * globalThis: Jest loads our entry points as separate bundles, each with its own copy of this module,
 * and all of them must share one order.
 */
export type ExitPhase = 'reap' | 'release';

const PHASES: readonly ExitPhase[] = ['reap', 'release'];

interface Registry {
  hooks: Array<{ phase: ExitPhase; run: () => void }>;
}

const KEY = Symbol.for('@seq-test/core/exit-hooks@1');

function registry(): Registry {
  const holder = globalThis as unknown as Record<symbol, Registry | undefined>;
  let found = holder[KEY];
  if (!found) {
    const created: Registry = { hooks: [] };
    holder[KEY] = created;
    found = created;
    process.prependListener('exit', () => runExitHooks(created));
  }
  return found;
}

/**
 * Runs `hook` when the process exits, in its phase (every 'reap' hook before any 'release' hook; within a
 * phase, in the order they were added). Returns a function that removes it (safe to call twice). A hook
 * that throws does not stop the others.
 */
export function onProcessExit(phase: ExitPhase, hook: () => void): () => void {
  const entry = { phase, run: hook };
  const { hooks } = registry();
  hooks.push(entry);
  return () => {
    const at = hooks.indexOf(entry);
    if (at !== -1) hooks.splice(at, 1);
  };
}

function runExitHooks(registry: Registry): void {
  for (const phase of PHASES) {
    for (const entry of registry.hooks.filter((hook) => hook.phase === phase)) {
      const at = registry.hooks.indexOf(entry);
      if (at === -1) continue; // removed by an earlier hook
      registry.hooks.splice(at, 1);
      try {
        entry.run();
      } catch {
        // Exiting anyway; the next waiter recovers what a dead run left (protocol, "Deciding").
      }
    }
  }
}
