import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vitest/config';
import type { RawTestConfig } from './requests.js';
import { type SeqTestOptions, session } from './session.js';
import type { VitestLike } from './vitest-shapes.js';

/** The global setup the plugin puts first in `test.globalSetup` (a tiny file that calls into the session). */
export const GLOBAL_SETUP = fileURLToPath(new URL('./global-setup.js', import.meta.url));

interface TestConfigLike extends RawTestConfig {
  globalSetup?: string | string[];
  maxWorkers?: number | string;
  fileParallelism?: boolean;
}

/**
 * `plugins: [seqTest()]` in vitest.config (or vite.config): Vitest runs one test file at a time, each run
 * holds the project's seq-test lock (the same queue as `seq-test run`), and whatever the tests leave
 * running is ended and named after the run.
 */
export function seqTest(options: SeqTestOptions = {}): Plugin {
  validate(options);
  const state = session();
  state.configure(options);
  return {
    name: 'seq-test',
    config(config, env) {
      const holder = config as { test?: TestConfigLike };
      holder.test ??= {};
      const test = holder.test;
      state.rawConfig ??= { ...test, poolOptions: structuredCloneSafe(test.poolOptions) };
      // First, so that the lock is held and the token exported before anyone else's global setup.
      const setups = test.globalSetup === undefined ? [] : [test.globalSetup].flat();
      if (!setups.includes(GLOBAL_SETUP)) test.globalSetup = [GLOBAL_SETUP, ...setups];
      if (options.singleWorker !== false) {
        // A first step only; the resolved config is enforced again in configureVitest and global setup.
        test.fileParallelism = false;
        test.maxWorkers = 1;
      }
      // Vite 6 (Vitest 3.0/3.1) loads a global setup only from allowed directories; the plugin may live
      // outside the project (npm link, a monorepo). Vitest always sets server.fs.allow itself, so this
      // only adds to its list; outside Vitest (a plain `vite dev`) nothing is added.
      if (process.env.VITEST === 'true' || env?.mode === 'test') {
        return { server: { fs: { allow: [dirname(GLOBAL_SETUP)] } } };
      }
      return undefined;
    },
    configResolved(resolved) {
      // Vitest sets server.watch to null for a run without watch mode (3.x, 4.x); 5.x says test.watch: false.
      const view = resolved as { server?: { watch?: unknown }; test?: { watch?: unknown }; configFile?: string };
      if (view.server?.watch === null || view.test?.watch === false) state.noteRunMode();
      state.noteConfigFile(view.configFile);
    },
    // Before Vitest builds its projects: in `vitest run` the lock covers the whole process from here.
    async configureServer() {
      await state.serverStarting();
    },
    // Vitest 3.1+: called once per project in Vitest 5, not at all for a root config with `projects` in 3/4.
    configureVitest(context: { vitest: unknown }) {
      state.configureVitest(context.vitest as VitestLike);
    },
  } as Plugin;
}

function validate(options: SeqTestOptions): void {
  const positive = (name: keyof SeqTestOptions, min: number) => {
    const value = options[name];
    if (value === undefined) return;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      (name === 'slots' && !Number.isInteger(value))
    ) {
      throw new TypeError(
        `seqTest({ ${name} }) expects ${name === 'slots' ? 'a whole number' : 'a number'} of at least ${min}, got ${JSON.stringify(value)}`,
      );
    }
  };
  positive('slots', 1);
  positive('waitTimeoutMs', 0);
  positive('lingerMs', 0);
  positive('reapGraceMs', 0);
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.trim() === '')) {
    throw new TypeError(`seqTest({ key }) expects a non-empty string, got ${JSON.stringify(options.key)}`);
  }
}

function structuredCloneSafe<T>(value: T): T {
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}
