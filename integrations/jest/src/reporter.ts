import { SAY_PREFIX } from '@seq-test/core';
import { jestRequire } from './jest-modules.js';
import { type Summary, type SummaryPrinter, shared } from './state.js';
import { describeSummary } from './summary.js';

/**
 * A Jest reporter (on @jest/reporters' BaseReporter, of the Jest that is running) that prints, when the run
 * ends, how long it waited for the lock and which processes the tests left running were ended, e.g.
 *
 *   seq-test: waited 2.1 s for the lock on /home/me/app; ended 1 process the tests left running: 4242 sleep 300
 *
 * Leftovers are ended after the project's own globalTeardown (which may stop what its setup started), that
 * is after every reporter's onRunComplete; our global teardown therefore hands the summary to this
 * reporter. Without the reporter (e.g. `--reporters default`), the global teardown prints the same line.
 */
interface BaseReporterLike {
  log(message: string): void;
}

const { BaseReporter } = jestRequire('@jest/reporters') as { BaseReporter: new () => BaseReporterLike };

export default class SeqTestReporter extends BaseReporter implements SummaryPrinter {
  constructor() {
    super();
    shared().reporter = this;
  }

  printSummary(summary: Summary): void {
    this.log(`${SAY_PREFIX} ${describeSummary(summary)}`);
  }
}
