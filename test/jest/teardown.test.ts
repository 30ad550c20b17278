import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { aliveProbe } from '../support/probes.js';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import {
  ensureJest,
  FIXTURES,
  INSTALL_TIMEOUT_MS,
  type JestInstall,
  JestRun,
  leftoverSleeps,
  nothingLeft,
  ticketsLeft,
  VERSIONS,
} from './helpers.js';

// The cases where Jest runs no global teardown, or exits under it: SIGINT/SIGTERM (jest#6029), --bail
// (Jest 29 calls process.exit straight away), --forceExit, and a Jest killed outright. In each, the lock
// must be released (or recovered by the next run) and nothing the tests started may survive.

/** Haste map files Jest has written to a cache directory (none until it has built one). */
function hasteMaps(cacheDir: string): string[] {
  return existsSync(cacheDir) ? readdirSync(cacheDir).filter((name) => name.startsWith('haste-map')) : [];
}

describe.each(VERSIONS)('%s', (name) => {
  let jest: JestInstall;
  let sb: TestSandbox;
  beforeAll(async () => {
    jest = await ensureJest(name);
  }, INSTALL_TIMEOUT_MS);
  beforeEach(() => {
    sb = new TestSandbox();
  });
  afterEach(() => {
    sb.cleanup();
  });

  /** Starts a run whose leaky test then sits still, and resolves once its `sleep 300` is running. */
  async function busyRun(env: NodeJS.ProcessEnv = {}): Promise<{ run: JestRun; sleeps: number[] }> {
    const run = new JestRun(sb, jest, [], { env: { EXAMPLE_SLOW_MS: '120000', ...env } });
    const sleeps = await run.waitFor(() => {
      const found = leftoverSleeps(sb);
      return found.length > 0 && found;
    }, 'the leaky test to start `sleep 300`');
    return { run, sleeps };
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} mid-run: the run's processes are ended, the lock released, and Jest dies of the signal`, async () => {
      const { run } = await busyRun();
      expect(ticketsLeft(sb)).toHaveLength(1);
      run.started.child.kill(signal);
      const result = await run.done();
      expect(result.signal, run.output).toBe(signal);
      // The project's server (started by its global setup) and the leftover: both carry the token.
      expect(run.output).toMatch(
        new RegExp(
          `seq-test: waited [\\d.]+ m?s for the lock on [\\w-]+; ended 2 processes the tests left running: .*\\(on ${signal}\\)`,
        ),
      );
      expect(run.output).toMatch(/\d+ sleep 300/);
      expect(run.output).toMatch(/\d+ \S*node \S*greeting-server\.js welcome/);
      await nothingLeft(sb);
      expect(ticketsLeft(sb)).toEqual([]);
    });
  }

  it('SIGINT while waiting in the queue: Jest dies of it at once, the holder is not disturbed, the dead ticket goes', async () => {
    const release = join(sb.dir, 'release');
    const holder = new JestRun(sb, jest, [], { name: 'holder', env: { EXAMPLE_HOLD_FILE: release } });
    await holder.waitFor(() => holder.hook('globalSetup'), 'the first run to hold the lock');
    const waiter = new JestRun(sb, jest, [], { name: 'waiter', freshCache: true });
    await waiter.waitFor(() => waiter.output.includes('waiting for the lock'), 'the second run to queue');
    expect(ticketsLeft(sb)).toHaveLength(2);
    // It waits while Jest evaluates its config, before the haste map (which Jest writes to its cache dir).
    expect(hasteMaps(waiter.cacheDir)).toEqual([]);
    waiter.started.child.kill('SIGINT');
    const interrupted = await waiter.done();
    expect(interrupted.signal, waiter.output).toBe('SIGINT');
    expect(waiter.hook('globalSetup')).toBeUndefined(); // the project's setup never ran
    writeFileSync(release, '');
    const held = await holder.done();
    expect(held.code, holder.output).toBe(0);
    // Its ticket died with it (no JavaScript runs while the config waits); the next reader of the queue
    // removes it, here a `seq-test run` that then holds at once.
    const next = await sb.run(['run', '--', 'true'], { env: { SEQ_TEST_KEY: `jest-e2e-${sb.marker}` } });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).not.toContain('waiting for the lock');
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('the process that started Jest is killed (`timeout 60 npx jest`): Jest ends its run and releases the lock', async () => {
    const run = new JestRun(sb, jest, [], { viaParent: true, env: { EXAMPLE_HOLD_FILE: join(sb.dir, 'never') } });
    const setup = await run.waitFor(() => run.hook('globalSetup'), 'Jest to hold the lock');
    await run.waitFor(() => leftoverSleeps(sb).length > 0, 'the leaky test to start `sleep 300`');
    run.started.child.kill('SIGKILL'); // the parent (npx) only: Jest is re-parented
    await run.exited();
    await waitFor(() => !isAlive(setup.pid), 60_000, 'the orphaned Jest to end its run');
    expect(run.output).toContain(`seq-test: the process that started Jest (pid ${run.pid}) is gone: ending the run`);
    expect(run.output).toMatch(/ended \d+ process(es)? the tests left running: .*sleep 300.*\(on SIGTERM\)/);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  // Issue 15 item 6: with SEQ_TEST_ORPHAN=keep Jest's parent watch stays off, standing in for a Jest that cannot
  // notice (hung). `seq-test status` must say it is re-parented, and `seq-test cancel` end it (its leftovers and
  // ticket with it) so that the next queued run starts.
  it('a re-parented Jest holding the lock: status says so, cancel ends it and its leftovers, the next run starts', async () => {
    const key = `jest-e2e-${sb.marker}`;
    const env = sb.env({ SEQ_TEST_KEY: key });
    const tickets = (): TicketStatus[] => readStatus({ key, env, withLeftovers: false }).queues[0]?.tickets ?? [];
    const run = new JestRun(sb, jest, [], {
      viaParent: true,
      env: { EXAMPLE_HOLD_FILE: join(sb.dir, 'never'), SEQ_TEST_ORPHAN: 'keep' },
    });
    const setup = await run.waitFor(() => run.hook('globalSetup'), 'Jest to hold the lock');
    const sleeps = await run.waitFor(() => {
      const found = leftoverSleeps(sb);
      return found.length > 0 && found;
    }, 'the leaky test to start `sleep 300`');
    expect(tickets().map((t) => [t.pid, t.state, t.reparented])).toEqual([[setup.pid, 'holding', false]]);

    run.started.child.kill('SIGKILL'); // the parent (npx) only: Jest is re-parented
    await run.exited();
    await waitFor(() => tickets().find((t) => t.reparented), 60_000, 'status to see Jest re-parented');
    const status = await sb.run(['status'], { env: { SEQ_TEST_KEY: key } });
    expect(status.stdout).toContain(
      `re-parented: its parent ${run.pid} (node) is gone; end it with: seq-test cancel ${setup.pid}`,
    );
    const json = JSON.parse((await sb.run(['status', '--json'], { env: { SEQ_TEST_KEY: key } })).stdout);
    expect(json.queues[0].tickets[0]).toMatchObject({ pid: setup.pid, reparented: true, parent: { pid: run.pid } });
    expect(isAlive(setup.pid)).toBe(true);

    const next = sb.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    await waitFor(() => tickets().some((t) => t.state === 'waiting'), 60_000, 'the next run to queue');
    const cancelled = await sb.run(['cancel', String(setup.pid)], { env: { SEQ_TEST_KEY: key } });
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`^cancelled pid ${setup.pid} \\(holding: .*\\): ended by SIG`, 'm'));
    expect(cancelled.stdout).toMatch(/its ticket is gone$/m);
    expect(isAlive(setup.pid)).toBe(false);
    for (const pid of sleeps) expect(isAlive(pid)).toBe(false);
    expect((await next.finished).code).toBe(0);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('--bail on a failing test file: lock released, leftover ended', async () => {
    const run = new JestRun(sb, jest, ['--bail'], { env: { EXAMPLE_FAIL: '1' } });
    const result = await run.done();
    expect(result.code, run.output).toBe(1);
    expect(run.output).toContain('fails when asked to');
    if (name === 'jest29') {
      // Jest 29 exits from inside the scheduler, without global teardown: our process 'exit' handler reaps,
      // including the server the project's own (skipped) teardown would have stopped.
      expect(run.hook('globalTeardown')).toBeUndefined();
      expect(run.output).toMatch(
        /seq-test: waited [\d.]+ m?s for the lock on [\w-]+; ended 2 processes the tests left running: .*\(Jest exited without its global teardown\)/,
      );
    } else {
      // Jest 30 runs global teardown on bail.
      expect(run.hook('globalTeardown')).toBeDefined();
      expect(run.output).toMatch(
        /seq-test: waited [\d.]+ m?s for the lock on [\w-]+; ended 1 process the tests left running: \d+ sleep 300$/m,
      );
    }
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('--forceExit: the leftover is ended before Jest exits', async () => {
    const run = new JestRun(sb, jest, ['--forceExit', '-w', '3']);
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toMatch(/ended 1 process the tests left running: \d+ sleep 300/);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('a SIGKILLed Jest: the next run recovers the lock at once and ends what the dead run left', async () => {
    const { run: killed, sleeps } = await busyRun();
    killed.started.child.kill('SIGKILL');
    await killed.exited();
    // Nothing of ours ran: the leftover is still there (and the project's server, which holds Jest's stderr).
    expect(leftoverSleeps(sb)).toEqual(sleeps);

    const next = new JestRun(sb, jest, [], { name: 'next' });
    const result = await next.done();
    expect(result.code, next.output).toBe(0);
    expect(next.output).toMatch(
      new RegExp(
        `seq-test: warning: a run that died left \\d+ process\\(es\\) behind; ended: .*${sleeps[0]} \\(sleep 300\\)`,
      ),
    );
    expect(next.output).not.toContain('waiting for the lock');
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  // Issue 11, defect 1: at process exit the run's processes are ended before its ticket is released, so
  // the next run in the queue never starts while the dead run's leftovers still run.
  it('process.exit in a test: a run queued behind starts only after the TERM-ignoring leftover is gone', async () => {
    const pidFile = join(sb.dir, 'child.pid');
    const go = join(sb.dir, 'go');
    // In band (-i): the test's process.exit(3) must end Jest's main process itself (in a worker it would
    // end only the worker, and Jest would go on to its global teardown).
    const run = new JestRun(sb, jest, ['-i'], {
      config: join(FIXTURES, 'exit-order', 'exit-order.config.cjs'),
      env: { EXIT_ORDER_PID: pidFile, EXIT_ORDER_GO: go },
    });
    const child = await run.waitFor(
      () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')),
      'the test to start its child',
    );
    const next = sb.start(['run', '--', ...aliveProbe(child)], { env: { SEQ_TEST_KEY: `jest-e2e-${sb.marker}` } });
    await run.waitFor(() => next.output.stderr.includes('waiting for the lock'), 'the next run to queue');
    writeFileSync(go, '');
    const result = await run.done();
    expect(result.code, run.output).toBe(3);
    const probe = await next.finished;
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stdout.trim(), `${run.output}\n${probe.stderr}`).toBe('gone');
    expect(isAlive(child)).toBe(false);
    await nothingLeft(sb);
  });
});
