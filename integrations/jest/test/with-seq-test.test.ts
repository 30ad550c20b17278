import { createRequire } from 'node:module';
import {
  GLOBAL_SETUP,
  GLOBAL_TEARDOWN,
  type JestConfig,
  presetConfig,
  REPORTER,
  RUNNER,
  withSeqTest,
} from '@seq-test/jest';
import { describe, expect, it } from 'vitest';

// The config rewrite alone (no Jest run): what withSeqTest() sets, what it keeps for later, what it refuses.

const STASH = '@seq-test/jest';
const require = createRequire(import.meta.url);

describe('withSeqTest()', () => {
  it('puts our hooks, runner, one worker and the reporter in, and keeps the project’s hooks for chaining', () => {
    const config = withSeqTest(
      {
        testEnvironment: 'node',
        maxWorkers: '50%',
        globalSetup: './setup.js',
        globalTeardown: '<rootDir>/teardown.js',
        globals: { mine: 1 },
      },
      { key: 'shared-lane' },
    );
    expect(config).toMatchObject({
      testEnvironment: 'node',
      maxWorkers: 1,
      globalSetup: GLOBAL_SETUP,
      globalTeardown: GLOBAL_TEARDOWN,
      runner: RUNNER,
      reporters: ['default', REPORTER],
    });
    expect(config.globals).toEqual({
      mine: 1,
      [STASH]: {
        globalSetup: './setup.js',
        globalTeardown: '<rootDir>/teardown.js',
        key: 'shared-lane',
        maxWorkers: '50%',
      },
    });
  });

  it('keeps the reporters given, adding ours once', () => {
    const reporters: Array<string | [string, Record<string, unknown>]> = [['jest-junit', { outputDirectory: 'out' }]];
    const once = withSeqTest({ reporters });
    expect(once.reporters).toEqual([['jest-junit', { outputDirectory: 'out' }], REPORTER]);
    expect(withSeqTest(once).reporters).toEqual(once.reporters);
  });

  it('wraps every inline project’s runner, keeps string projects and custom runners, and notes project hooks', () => {
    const config = withSeqTest<JestConfig>({
      projects: [
        { displayName: 'unit', testMatch: ['**/*.unit.js'] },
        { displayName: 'db', runner: 'jest-runner', globalSetup: './db-setup.js' },
        { displayName: 'lint', runner: 'jest-runner-eslint' },
        '<rootDir>/packages/*',
      ],
    });
    const projects = config.projects as Array<Record<string, unknown> | string>;
    expect(projects.map((p) => (typeof p === 'string' ? p : p.runner))).toEqual([
      RUNNER,
      RUNNER,
      'jest-runner-eslint',
      '<rootDir>/packages/*',
    ]);
    expect((projects[1] as Record<string, unknown>).globalSetup).toBe('./db-setup.js'); // Jest runs it itself
    expect(config.globals?.[STASH]).toEqual({ customRunners: ['jest-runner-eslint'], projectHooks: ['db'] });
    expect((projects[0] as { globals: Record<string, unknown> }).globals[STASH]).toBe(config.globals?.[STASH]);
    expect(config.runner).toBeUndefined();
  });

  it('wrapping a wrapped config changes nothing: the user’s hooks stay theirs, one stash is registered', () => {
    const registry = (globalThis as unknown as Record<symbol, unknown[]>)[Symbol.for('@seq-test/jest.stashes')] ?? [];
    const before = registry.length;
    const once = withSeqTest<JestConfig>({ globalSetup: './setup.js', maxWorkers: 4 }, { key: 'k' });
    const twice = withSeqTest<JestConfig>({ ...once, verbose: true });
    expect(twice).toMatchObject({ globalSetup: GLOBAL_SETUP, globalTeardown: GLOBAL_TEARDOWN, runner: RUNNER });
    expect(twice.reporters).toEqual(['default', REPORTER]);
    expect(twice.globals).toEqual({ [STASH]: { globalSetup: './setup.js', key: 'k', maxWorkers: 4 } });
    const registered = (globalThis as unknown as Record<symbol, unknown[]>)[Symbol.for('@seq-test/jest.stashes')];
    expect(registered?.length).toBe(before + 1);
    expect(registered?.at(-1)).toBe(twice.globals?.[STASH]);
    // Another copy of @seq-test/jest's paths (or the package subpaths) count as ours too.
    const other = withSeqTest<JestConfig>({
      globalSetup: '@seq-test/jest/global-setup',
      runner: '@seq-test/jest/runner',
      reporters: ['default', '@seq-test/jest/reporter'],
    });
    expect(other.globals?.[STASH]).toEqual({});
    expect(other.runner).toBe(RUNNER);
    expect(other.reporters).toEqual(['default', '@seq-test/jest/reporter']);
  });

  it('accepts what a config file may export: a function (sync or async) or a promise', async () => {
    const fromFunction = withSeqTest(() => ({ verbose: true }));
    const fromAsync = withSeqTest(async () => ({ verbose: true }));
    const fromPromise = withSeqTest(Promise.resolve({ verbose: true }));
    for (const config of [await fromFunction(), await fromAsync(), await fromPromise]) {
      expect(config).toMatchObject({ verbose: true, runner: RUNNER, globalSetup: GLOBAL_SETUP });
    }
  });

  it('refuses what is not a config, naming what it got', () => {
    expect(() => withSeqTest(null as never)).toThrow('withSeqTest() expects a Jest config object, got null');
    expect(() => withSeqTest([] as never)).toThrow('got an array');
    expect(() => withSeqTest({ globalSetup: 42 as never })).toThrow('globalSetup must be a module path, got number 42');
    expect(() => withSeqTest({}, { key: ' ' })).toThrow('options.key must be a non-empty string, got " "');
  });

  it('the preset file and the CJS build give the same settings as the ESM build', () => {
    const preset = require('@seq-test/jest/jest-preset');
    expect(preset).toEqual(presetConfig());
    expect(preset).toEqual({
      globalSetup: GLOBAL_SETUP,
      globalTeardown: GLOBAL_TEARDOWN,
      maxWorkers: 1,
      runner: RUNNER,
      reporters: ['default', REPORTER],
    });
    const cjs = require('@seq-test/jest') as typeof import('@seq-test/jest');
    expect(cjs.withSeqTest<JestConfig>({}).globalSetup).toBe(GLOBAL_SETUP);
    expect(GLOBAL_SETUP).toMatch(/integrations\/jest\/dist\/global-setup\.js$/);
  });
});
