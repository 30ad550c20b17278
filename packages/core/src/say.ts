import { writeSync } from 'node:fs';

/** Every line seq-test and its integrations print themselves starts with this. */
export const SAY_PREFIX = 'seq-test:';

/**
 * One line on stderr, prefixed. Synchronous, so that it also comes out from a process 'exit' hook (and
 * lands in order with the test runner's own output). A closed stderr is not our failure to report.
 */
export function say(line: string): void {
  try {
    writeSync(2, `${SAY_PREFIX} ${line}\n`);
  } catch {}
}
