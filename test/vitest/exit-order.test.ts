// Issue 11, defect 1, with Vitest: when the Vitest process exits without its teardown, the run's processes
// are ended before its ticket is released, so a run queued behind never starts while they still run.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { aliveProbe } from '../support/probes.js';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { prepareExample, REPO_VITEST, startSeqTestRun, startVitest } from './support.js';

// Vitest turns process.exit in a test worker into a test failure; in the Vitest process itself (here its
// global setup, which runs under the lock and with the run's token) it ends the process at once.
const EXIT_SETUP = `
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';

export default async function setup() {
  // SIG_IGN survives exec: the sleep itself ignores TERM.
  const child = spawn('sh', ['-c', 'trap "" TERM; exec sleep 300'], { detached: true, stdio: 'ignore' });
  child.unref();
  writeFileSync(process.env.EXIT_ORDER_PID, String(child.pid));
  while (!existsSync(process.env.EXIT_ORDER_GO)) await new Promise((resolve) => setTimeout(resolve, 20));
  process.exit(3);
}
`;

const EXIT_CONFIG = `
import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [seqTest()],
  test: { include: ['tests/wordcount.test.ts'], globalSetup: ['tests/exit-setup.ts'] },
});
`;

const sandboxes: TestSandbox[] = [];
afterEach(() => {
  for (const s of sandboxes.splice(0)) s.cleanup();
});

test('process.exit in global setup: a run queued behind starts only after the TERM-ignoring leftover is gone', async () => {
  const box = new TestSandbox();
  sandboxes.push(box);
  const project = prepareExample(box, REPO_VITEST, {
    files: { 'tests/exit-setup.ts': EXIT_SETUP, 'vitest.config.ts': EXIT_CONFIG },
  });
  const pidFile = join(box.dir, 'child.pid');
  const go = join(box.dir, 'go');
  const vitest = startVitest(box, project, ['run'], {
    env: { EXIT_ORDER_PID: pidFile, EXIT_ORDER_GO: go },
  });
  const child = await waitFor(
    () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')),
    60_000,
    'the test to start its child',
  );
  const next = startSeqTestRun(box, project, aliveProbe(child));
  await waitFor(() => next.output.stderr.includes('waiting for the lock'), 60_000, 'the next run to queue');
  writeFileSync(go, '');
  const result = await vitest.exited;
  const probe = await next.finished;
  expect(probe.code, probe.stderr).toBe(0);
  expect(probe.stdout.trim(), `${vitest.output.stderr}\n${probe.stderr}`).toBe('gone');
  expect(result.code, vitest.output.stderr).toBe(3);
  expect(isAlive(child)).toBe(false);
});
