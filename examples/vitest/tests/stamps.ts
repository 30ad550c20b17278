// Test-run instrumentation for the repo's end-to-end tests: with EXAMPLE_STAMP_DIR set, every test file
// appends when it started and ended (wall clock, sub-millisecond) and in which process, so the tests can
// check that no two files ever ran at the same time. Without the variable it does nothing.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

const dir = process.env.EXAMPLE_STAMP_DIR;
if (dir) {
  const run = process.env.EXAMPLE_RUN_ID ?? 'run';
  const now = () => performance.timeOrigin + performance.now();
  const stamp = (event: string, file: string) =>
    appendFileSync(join(dir, `${run}.stamps`), `${JSON.stringify({ run, event, file, pid: process.pid, t: now() })}\n`);
  let file = 'unknown';
  beforeAll(() => {
    file = expect.getState().testPath ?? 'unknown';
    stamp('start', file);
  });
  afterAll(() => stamp('end', file));
}
