import { interopDefault, jestRequire } from './jest-modules.js';
import { say } from './output.js';
import { beginRun, finishRun } from './run.js';
import { shared, stashOf } from './state.js';
import type { JestGlobalConfig, JestTest } from './types.js';

/**
 * Jest's own runner (jest-runner, of the Jest that is running), made serial: the scheduler then runs every
 * test file of the project in band, one after another in Jest's main process, whatever -w/--maxWorkers
 * says. This is the only lever that wins over the command line (maxWorkers in a config or preset loses to
 * -w, and the global config is frozen by the time a global setup runs) and it works per project, so inside
 * projects[] too.
 *
 * `isSerial` must be an own property set after super(): jest-runner declares it as a class field, which
 * would shadow a getter on our prototype.
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

  constructor(...args: RunnerArgs) {
    super(...args);
    this.isSerial = true;
    this.seqGlobalConfig = args[0];
  }

  override async runTests(tests: JestTest[], watcher: unknown, ...rest: unknown[]): Promise<void> {
    const stash = stashOf(tests[0]?.context.config);
    const asked = Number(this.seqGlobalConfig.maxWorkers) > 1 ? this.seqGlobalConfig.maxWorkers : stash.maxWorkers;
    if (asked !== undefined && String(asked) !== '1' && tests.length > 1) {
      say(`running test files one at a time in Jest's process (maxWorkers ${asked} overridden)`);
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
