import { say } from '@seq-test/core';
import { askedInBand } from './in-band.js';
import { interopDefault, jestRequire } from './jest-modules.js';
import { verbose } from './output.js';
import { beginRun, finishRun } from './run.js';
import { shared, stashOf } from './state.js';
import type { JestGlobalConfig, JestTest } from './types.js';

/**
 * Jest's own runner (jest-runner, of the Jest that is running), limited to ONE worker process: test files
 * run one after another in a single child process, as they would under plain Jest with workers (each sees
 * the worker's own process.argv, process.exit ends only the worker, process.cwd() and process.env changes
 * stay out of Jest's main process). In band (inside Jest's main process) only where the user asked for it:
 * `-i`/`--runInBand`, or `--detectOpenHandles`, which Jest only supports in band.
 *
 * Jest's scheduler decides "in band" itself (shouldRunInBand: one worker, one test file, or a few fast files
 * with timings) and passes it as `options.serial`; jest-runner then either runs files in its own process or
 * starts a jest-worker pool of `globalConfig.maxWorkers` processes. So this runner
 *  - hands jest-runner a copy of the global config with `maxWorkers: 1` (the only place jest-runner reads
 *    the pool size; it wins over `-w` on the command line, which the frozen global config keeps), and
 *  - overrides `options.serial` unless the user asked for in-band.
 * Both work per project, so inside projects[] too.
 *
 * If our global setup did not run (a config that uses the preset but sets its own globalSetup), the runner
 * takes the lock itself for the time the test files run.
 */
type RunnerArgs = [globalConfig: JestGlobalConfig, context: unknown, options?: unknown];

interface JestTestRunner {
  isSerial?: boolean;
  runTests(tests: JestTest[], watcher: unknown, ...rest: unknown[]): Promise<void>;
}

const TestRunner = interopDefault<new (...args: RunnerArgs) => JestTestRunner>(jestRequire('jest-runner'));

export default class SeqTestRunner extends TestRunner {
  private readonly seqGlobalConfig: JestGlobalConfig;
  private readonly inBand: boolean;

  constructor(globalConfig: JestGlobalConfig, ...rest: [context: unknown, options?: unknown]) {
    super({ ...globalConfig, maxWorkers: 1 }, ...rest);
    this.seqGlobalConfig = globalConfig;
    this.inBand = askedInBand(globalConfig);
    // jest-runner declares isSerial as a class field: an own property set after super() is what counts.
    this.isSerial = this.inBand;
  }

  override async runTests(tests: JestTest[], watcher: unknown, ...rest: unknown[]): Promise<void> {
    const stash = stashOf(tests[0]?.context.config);
    const asked = Number(this.seqGlobalConfig.maxWorkers) > 1 ? this.seqGlobalConfig.maxWorkers : stash.maxWorkers;
    if (asked !== undefined && String(asked) !== '1' && tests.length > 1 && !this.inBand) {
      say(`one test file at a time, in one worker process (maxWorkers ${asked} → 1)`);
    }
    // The last argument is the scheduler's { serial } (Jest 29 and 30, with or without event emitters).
    const last = rest.length - 1;
    const options = rest[last];
    if (options && typeof options === 'object' && 'serial' in options) {
      rest[last] = { ...options, serial: this.inBand };
      if (this.inBand) verbose('test files run in band, in Jest’s own process (--runInBand/--detectOpenHandles)');
    }
    const current = shared().run;
    let own: Awaited<ReturnType<typeof beginRun>> | undefined;
    if (!current || current.finished) {
      say(
        "this config's globalSetup is not @seq-test/jest's: taking the lock for the test files only (use withSeqTest() to chain your globalSetup)",
      );
      own = await beginRun({ via: 'runner', rootDir: this.seqGlobalConfig.rootDir, key: stash.key });
    }
    try {
      await super.runTests(tests, watcher, ...rest);
    } finally {
      if (own) await finishRun(own);
    }
  }
}
