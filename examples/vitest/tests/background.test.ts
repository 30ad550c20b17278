import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

// On purpose: a test that starts a background job in its own session and forgets it. Without seq-test this
// `sleep 300` outlives the test run; with the plugin it is ended after the run and named in the output.
test('starts a background job and forgets about it', () => {
  const job = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  job.unref();
  if (process.env.EXAMPLE_STAMP_DIR) {
    writeFileSync(
      join(process.env.EXAMPLE_STAMP_DIR, `${process.env.EXAMPLE_RUN_ID ?? 'run'}.leftover`),
      String(job.pid),
    );
  }
  expect(job.pid).toBeGreaterThan(0);
});
