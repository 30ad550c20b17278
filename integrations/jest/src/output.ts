import { writeSync } from 'node:fs';

/** Every line this package prints starts with this, like the CLI's, so it stands out from Jest's output. */
export const PREFIX = 'seq-test:';

/** One line on stderr. Synchronous, so that it also comes out from a process 'exit' handler. */
export function say(line: string): void {
  try {
    writeSync(2, `${PREFIX} ${line}\n`);
  } catch {}
}

/** SEQ_TEST_VERBOSE=1: also say what happened when nothing worth a line did (no wait, nothing reaped). */
export function isVerbose(): boolean {
  return process.env.SEQ_TEST_VERBOSE === '1';
}

/** A line only under SEQ_TEST_VERBOSE=1. */
export function verbose(line: string): void {
  if (isVerbose()) say(line);
}

/** The queue line is core's (the same as `seq-test run` prints). */
export { WaitLine } from '@seq-test/core';
