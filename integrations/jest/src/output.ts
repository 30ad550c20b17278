import { say } from '@seq-test/core';

/** SEQ_TEST_VERBOSE=1: also say what happened when nothing worth a line did (no wait, nothing reaped). */
export function isVerbose(): boolean {
  return process.env.SEQ_TEST_VERBOSE === '1';
}

/** A line only under SEQ_TEST_VERBOSE=1. */
export function verbose(line: string): void {
  if (isVerbose()) say(line);
}
