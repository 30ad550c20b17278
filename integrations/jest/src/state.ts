import type { AutoHolder, EndedProcess, LockHandle, RunToken } from '@seq-test/core/internal';

/**
 * What the Jest main process knows about the current run. Our global setup, global teardown, runner and
 * reporter are separate bundles that Jest loads by path (and the config helper may be ESM), so the state
 * they share lives on globalThis under a registered symbol rather than in a module.
 */
export interface RunState {
  /** Which of our entry points took the lock: our global setup (normal), or the runner (fallback). */
  via: 'setup' | 'runner';
  key?: string;
  lock?: LockHandle;
  /** `"slots": "auto"`: measures this run's tree for the memory history while it holds. */
  auto?: AutoHolder;
  /** The run's token: the lock's, or (SEQ_TEST_DISABLE=1) one of our own, for reaping without a lock. */
  token?: RunToken;
  /** SEQ_TEST_DISABLE=1: no lock, no token, no reaping. */
  disabled: boolean;
  /** While acquireLock runs; a signal aborts it. */
  acquiring?: Promise<unknown>;
  aborter: AbortController;
  /** Processes below Jest's main process that existed before we held the lock (identityKey): not ours. */
  baseline: Set<string>;
  /** SEQ_TEST_TOKEN before we extended it, restored when the run ends (watch mode starts further runs). */
  previousChain: string | undefined;
  graceMs: number;
  signalHandlers: Array<[NodeJS.Signals, () => void]>;
  signalled?: NodeJS.Signals;
  finishing?: Promise<Summary>;
  finished: boolean;
}

export interface Summary {
  key: string | undefined;
  waitedMs: number;
  nested: boolean;
  disabled: boolean;
  ended: EndedProcess[];
  /** Why the run ended early, if it did: a signal, or Jest exiting without its global teardown. */
  cause?: NodeJS.Signals | 'exit';
}

export interface SummaryPrinter {
  printSummary(summary: Summary): void;
}

interface Shared {
  run?: RunState;
  reporter?: SummaryPrinter;
  exitHandler?: boolean;
  /** parent-watch.ts: stops the watch that notices Jest being re-parented. */
  stopParentWatch?: (() => void) | undefined;
  /** The lock taken while Jest evaluated the config (early-lock.ts), until our global setup adopts it. */
  early?: LockHandle;
  said: Set<string>;
  /** Our global hooks currently running the user's hook (a guard against running ourselves as theirs). */
  inHook?: Set<'globalSetup' | 'globalTeardown'>;
}

const KEY = Symbol.for('@seq-test/jest');

export function shared(): Shared {
  const holder = globalThis as unknown as Record<symbol, Shared | undefined>;
  let value = holder[KEY];
  if (!value) {
    value = { said: new Set() };
    holder[KEY] = value;
  }
  return value;
}

/** Our settings carried through Jest's config, under this key of `globals` (see config.ts). */
export const STASH_KEY = '@seq-test/jest';

export interface Stash {
  /** The user's own global setup and teardown, as written in their config (resolved like Jest does). */
  globalSetup?: string;
  globalTeardown?: string;
  /** Lock key given to withSeqTest(). */
  key?: string;
  /** maxWorkers the config asked for before we set it to 1. */
  maxWorkers?: number | string;
  /** Runners we could not wrap (not jest-runner): their projects may still run files in parallel. */
  customRunners?: string[];
  /** Names of inline projects with their own globalSetup/globalTeardown (Jest runs those before ours). */
  projectHooks?: string[];
}

export function stashOf(projectConfig: { globals?: Record<string, unknown> } | undefined): Stash {
  const value = projectConfig?.globals?.[STASH_KEY];
  if (value && typeof value === 'object') return value as Stash;
  // Projects given as paths to their own config files do not carry the top-level globals; the top-level
  // config was loaded by this same process, which registered its stash here.
  return registeredStashes()[0] ?? {};
}

const STASHES = Symbol.for('@seq-test/jest.stashes');

export function registeredStashes(): Stash[] {
  const holder = globalThis as unknown as Record<symbol, Stash[] | undefined>;
  let list = holder[STASHES];
  if (!list) {
    list = [];
    holder[STASHES] = list;
  }
  return list;
}

/** Prints a line once per process (notices that would otherwise repeat in watch mode). */
export function once(id: string): boolean {
  const { said } = shared();
  if (said.has(id)) return false;
  said.add(id);
  return true;
}
