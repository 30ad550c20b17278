// Issue 15 item 6 with a real Vitest: the process that started it (an npx stand-in) is SIGKILLed while it
// holds the lock. With SEQ_TEST_ORPHAN=keep its own parent watch stays off, standing in for a run that
// cannot notice (hung); `seq-test status` must then say it is re-parented, and `seq-test cancel` end it,
// its leftovers and its ticket, so that the next queued run starts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, expect, test } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { WAITING_PARENT } from '../support/waiting-parent.js';
import { HOLD_TEST, prepareExample, REPO_VITEST, startSeqTestRun, vitestEnv } from './support.js';

let box: TestSandbox | undefined;
afterEach(() => {
  box?.cleanup();
  box = undefined;
});

test('a re-parented Vitest holding the lock: status says so; cancel ends it and its leftovers; the next run starts', async () => {
  const sb = new TestSandbox();
  box = sb;
  const project = prepareExample(sb, REPO_VITEST, { files: { 'tests/hold.test.ts': HOLD_TEST } });
  const env = sb.env({ SEQ_TEST_KEY: project.key });
  const tickets = (): TicketStatus[] =>
    readStatus({ key: project.key, env, withLeftovers: false }).queues[0]?.tickets ?? [];
  const parent = sb.start(
    ['-e', WAITING_PARENT, join(project.install.vitest, 'vitest.mjs'), 'run', 'tests/hold.test.ts'],
    {
      file: project.install.node,
      cwd: project.dir,
      env: vitestEnv(project, { env: { EXAMPLE_HOLD_MS: '600000', SEQ_TEST_ORPHAN: 'keep' } }),
    },
  );
  await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
  const held = tickets().find((t) => t.state === 'holding');
  expect(held?.reparented).toBe(false);
  const vitestPid = held?.pid as number;

  parent.child.kill('SIGKILL');
  await parent.exited;
  await waitFor(() => tickets().find((t) => t.reparented), 60_000, 'status to see Vitest re-parented');
  const status = await sb.run(['status'], { env: { SEQ_TEST_KEY: project.key } });
  expect(status.stdout).toContain(
    `re-parented: its parent ${parent.child.pid} (node) is gone; end it with: seq-test cancel ${vitestPid}`,
  );
  const next = startSeqTestRun(sb, project, ['true']);
  await waitFor(() => tickets().some((t) => t.state === 'waiting'), 60_000, 'the next run to queue');
  // The test's two `sleep 300` (one detached) and Vitest's worker: all still running.
  const before = sb.ours().filter((pid) => pid !== next.child.pid);
  expect(before.length).toBeGreaterThanOrEqual(3);

  const cancelled = await sb.run(['cancel', String(vitestPid)], { env: { SEQ_TEST_KEY: project.key } });
  expect(cancelled.code, cancelled.stderr).toBe(0);
  expect(cancelled.stdout).toMatch(
    new RegExp(`^cancelled pid ${vitestPid} \\(holding: vitest run tests/hold\\.test\\.ts\\): ended by SIG`, 'm'),
  );
  expect(cancelled.stdout).toMatch(/its ticket is gone$/m);
  expect(isAlive(vitestPid)).toBe(false);
  const result = await next.finished;
  expect(result.code, result.stderr).toBe(0);
  await waitFor(() => sb.ours().length === 0, 60_000, 'Vitest and its leftovers to be gone');
  expect(tickets()).toEqual([]);
});
