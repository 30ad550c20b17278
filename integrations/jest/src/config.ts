import { waitEarly } from './early-lock.js';
import { GLOBAL_SETUP, GLOBAL_TEARDOWN, isOurs, REPORTER, RUNNER } from './paths.js';
import { registeredStashes, STASH_KEY, type Stash } from './state.js';
import type { JestConfig } from './types.js';

export interface SeqTestOptions {
  /** Lock key (default: $SEQ_TEST_KEY, else package.json "seqTest.key", else the git top-level). */
  key?: string;
}

type ConfigFunction<T> = () => T | Promise<T>;

/**
 * Wraps a Jest config so that the run takes the project's lock, runs one test file at a time, and ends every
 * process its tests leave running:
 *
 *   module.exports = withSeqTest({ testEnvironment: 'node', globalSetup: './setup.js' });
 *
 * Accepts what a Jest config file may export: an object, a promise of one, or a (possibly async) function.
 */
export function withSeqTest<T extends JestConfig>(
  config: ConfigFunction<T>,
  options?: SeqTestOptions,
): () => Promise<T>;
export function withSeqTest<T extends JestConfig>(config: Promise<T>, options?: SeqTestOptions): Promise<T>;
export function withSeqTest<T extends JestConfig>(config: T, options?: SeqTestOptions): T;
export function withSeqTest<T extends JestConfig>(
  config: T | Promise<T> | ConfigFunction<T>,
  options: SeqTestOptions = {},
): T | Promise<T> | (() => Promise<T>) {
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.trim() === '')) {
    throw new TypeError(`withSeqTest(): options.key must be a non-empty string, got ${JSON.stringify(options.key)}`);
  }
  if (typeof config === 'function') return async () => rewrite(await config(), options);
  if (config instanceof Promise) return config.then((value) => rewrite(value, options));
  return rewrite(config, options);
}

function rewrite<T extends JestConfig>(config: T, options: SeqTestOptions): T {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new TypeError(`withSeqTest() expects a Jest config object, got ${describe(config)}`);
  }
  for (const field of ['globalSetup', 'globalTeardown'] as const) {
    const value = config[field];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw new TypeError(`withSeqTest(): ${field} must be a module path, got ${describe(value)}`);
    }
  }
  // Wrapping an already wrapped config (a base config spread into withSeqTest({...base, ...})) unwraps it
  // first: the user's hooks and settings come from the earlier stash, and ours are never taken for theirs.
  const earlier = stashIn(config.globals);
  const stash: Stash = {};
  const globalSetup = isOurs(config.globalSetup, 'global-setup') ? earlier?.globalSetup : config.globalSetup;
  const globalTeardown = isOurs(config.globalTeardown, 'global-teardown')
    ? earlier?.globalTeardown
    : config.globalTeardown;
  if (globalSetup) stash.globalSetup = globalSetup;
  if (globalTeardown) stash.globalTeardown = globalTeardown;
  const key = options.key ?? earlier?.key;
  if (key !== undefined) stash.key = key;
  const maxWorkers =
    config.maxWorkers !== undefined && String(config.maxWorkers) !== '1' ? config.maxWorkers : earlier?.maxWorkers;
  if (maxWorkers !== undefined) stash.maxWorkers = maxWorkers;

  // Jest's CLI evaluating this config while another run holds the lock: wait here, before Jest's haste map.
  waitEarly({ key });

  const out: JestConfig = {
    ...config,
    globalSetup: GLOBAL_SETUP,
    globalTeardown: GLOBAL_TEARDOWN,
    maxWorkers: 1,
    reporters: withReporter(config.reporters),
  };
  const customRunners = new Set<string>();
  const projectHooks: string[] = [];
  if (Array.isArray(config.projects)) {
    out.projects = config.projects.map((project, index) => {
      // A string names another config file (or a directory holding one): it can use the preset, or
      // `runner: '@seq-test/jest/runner'`, itself.
      if (typeof project === 'string') return project;
      if (project.globalSetup || project.globalTeardown) {
        projectHooks.push(typeof project.displayName === 'string' ? project.displayName : `#${index + 1}`);
      }
      return {
        ...project,
        runner: wrapRunner(project.runner, customRunners),
        globals: withStash(project.globals, stash),
      };
    });
  } else {
    out.runner = wrapRunner(config.runner, customRunners);
  }
  if (customRunners.size > 0) stash.customRunners = [...customRunners];
  if (projectHooks.length > 0) stash.projectHooks = projectHooks;
  out.globals = withStash(config.globals, stash);
  // The outer wrap replaces the inner one's registration (path-given projects read the first registered).
  const registered = registeredStashes();
  const at = earlier ? registered.indexOf(earlier) : -1;
  if (at >= 0) registered[at] = stash;
  else registered.push(stash);
  return out as T;
}

/** Our runner replaces Jest's default one; another runner (jest-runner-eslint, …) is kept and reported. */
function wrapRunner(runner: string | undefined, custom: Set<string>): string {
  if (runner === undefined || runner === 'jest-runner' || isOurs(runner, 'runner')) return RUNNER;
  custom.add(runner);
  return runner;
}

function withReporter(reporters: JestConfig['reporters']): NonNullable<JestConfig['reporters']> {
  const list = reporters ?? ['default'];
  const has = list.some((r) => isOurs(Array.isArray(r) ? r[0] : r, 'reporter'));
  return has ? list : [...list, REPORTER];
}

function stashIn(globals: Record<string, unknown> | undefined): Stash | undefined {
  const value = globals?.[STASH_KEY];
  return value && typeof value === 'object' ? (value as Stash) : undefined;
}

function withStash(globals: Record<string, unknown> | undefined, stash: Stash): Record<string, unknown> {
  return { ...globals, [STASH_KEY]: stash };
}

/** The preset (`preset: '@seq-test/jest'`): the same rewrite, for a config that sets none of these itself. */
export function presetConfig(): JestConfig {
  return {
    globalSetup: GLOBAL_SETUP,
    globalTeardown: GLOBAL_TEARDOWN,
    maxWorkers: 1,
    runner: RUNNER,
    reporters: ['default', REPORTER],
  };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
