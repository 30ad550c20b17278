const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { setTimeout: sleep } = require('node:timers/promises');

// On purpose: starts a background job in its own session and forgets it. Plain Jest would leave
// `sleep 300` running after the run; under @seq-test/jest it is ended, and named, when the run ends.
test('starts a background job and forgets it', async () => {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  child.unref();
  expect(child.pid).toBeGreaterThan(0);
  // Knobs for seq-test's own end-to-end tests: keep the run busy for EXAMPLE_SLOW_MS, or until the file
  // EXAMPLE_HOLD_FILE exists.
  await sleep(Number(process.env.EXAMPLE_SLOW_MS ?? 0));
  const hold = process.env.EXAMPLE_HOLD_FILE;
  while (hold && !existsSync(hold)) await sleep(50);
}, 600_000);

// Another knob: EXAMPLE_FAIL=1 makes this fail (for --bail).
test('fails when asked to', () => {
  expect(process.env.EXAMPLE_FAIL ?? '').toBe('');
});
