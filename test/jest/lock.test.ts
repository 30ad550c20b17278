import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import { QUIET_MAX, quietest, tree } from '../support/wakeups.js';
import {
  ensureJest,
  FIXTURES,
  INSTALL_TIMEOUT_MS,
  type JestInstall,
  JestRun,
  leftoverSleeps,
  nothingLeft,
  overlapping,
  ticketsLeft,
  VERSIONS,
} from './helpers.js';

const PLAIN_CONFIG = join(FIXTURES, 'plain.config.cjs');

// @seq-test/jest on the example project (examples/jest), driven through real Jest 29 and 30: one test file
// at a time whatever -w says, one Jest run per key at a time, the project's own global setup and teardown
// run under the lock, the leftover the example leaves on purpose ended and named, and a Jest run inside
// `seq-test run` nested rather than deadlocked.

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

  it('control: plain Jest with --maxWorkers 4 starts workers and leaves the leftover running', async () => {
    const run = new JestRun(sb, jest, ['--maxWorkers', '4'], { config: PLAIN_CONFIG, freshCache: true });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    const pids = new Set(run.fileStamps().map((f) => f.pid));
    expect(pids.has(run.pid)).toBe(false);
    expect(pids.size).toBeGreaterThan(1);
    expect(leftoverSleeps(sb)).toHaveLength(1);
  });

  it('runs one test file at a time in one worker process even with --maxWorkers 4', async () => {
    const run = new JestRun(sb, jest, ['--maxWorkers', '4'], { freshCache: true });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toContain('Tests:       6 passed, 6 total');
    expect(run.output).toContain('seq-test: one test file at a time, in one worker process (maxWorkers 4 → 1)');

    const files = run.fileStamps();
    expect(files.map((f) => f.file).sort()).toEqual(['api.test.js', 'leaky.test.js', 'run.test.js', 'server.test.js']);
    // One worker process (not Jest's own) ran every file, never two at once.
    const pids = new Set(files.map((f) => f.pid));
    expect(pids.size).toBe(1);
    expect(pids.has(run.pid)).toBe(false);
    expect(overlapping(files.map((f) => ({ start: f.start, end: f.end, label: f.file })))).toEqual([]);

    // The project's own global setup ran after the lock was taken (it saw the run's token, owned by Jest),
    // and its teardown ran before leftovers were reaped (its server is not named as one).
    const setup = run.hook('globalSetup');
    expect(setup?.token?.split(':').pop()).toMatch(new RegExp(`^${run.pid}\\.\\d+\\.[0-9a-f]+$`));
    expect(run.hook('globalTeardown')).toBeDefined();
    const summary = run.output.split('\n').find((line) => line.startsWith('seq-test: waited'));
    expect(summary).toMatch(
      /^seq-test: waited [\d.]+ m?s for the lock on jest-e2e-[\w-]+; ended 1 process the tests left running: \d+ sleep 300$/,
    );

    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('two concurrent runs both pass, one after the other', async () => {
    // The first holds the lock until the second is seen queueing behind it: no timing assumptions.
    const release = join(sb.dir, 'release');
    const first = new JestRun(sb, jest, ['-w', '2'], { name: 'first', env: { EXAMPLE_HOLD_FILE: release } });
    await first.waitFor(() => first.hook('globalSetup'), 'the first run to hold the lock');
    const second = new JestRun(sb, jest, ['-w', '2'], { name: 'second' });
    await second.waitFor(() => second.output.includes('waiting for the lock'), 'the second run to queue');
    writeFileSync(release, '');
    const [a, b] = await Promise.all([first.done(), second.done()]);
    expect(a.code, first.output).toBe(0);
    expect(b.code, second.output).toBe(0);

    // The second queued behind the first (and said so), and their whole runs did not overlap.
    expect(second.output).toMatch(
      new RegExp(
        `seq-test: waiting for the lock on jest-e2e-[\\w-]+: position 2 of 2, held by pid ${first.pid} \\(jest `,
      ),
    );
    expect(second.output).toMatch(/seq-test: waited [\d.]+ m?s for the lock/);
    const span = (run: JestRun, label: string) => {
      const stamps = run.readStamps();
      const times = stamps.flatMap((s) => [s.at, s.start, s.end]).filter((t): t is number => t !== undefined);
      return { start: Math.min(...times), end: Math.max(...times), label };
    };
    expect(overlapping([span(first, 'first'), span(second, 'second')])).toEqual([]);
    expect(span(second, 'second').start).toBeGreaterThanOrEqual(span(first, 'first').end);

    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('inside `seq-test run` it joins the nested queue instead of waiting for its own ancestor', async () => {
    const run = new JestRun(sb, jest, [], { viaCli: true });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toMatch(
      /seq-test: ran inside an outer seq-test run \(nested lock on jest-e2e-[\w-]+, waited [\d.]+ m?s\); ended 1 process the tests left running: \d+ sleep 300/,
    );
    // The project's setup saw both tokens: seq-test run's, then Jest's.
    expect(run.hook('globalSetup')?.token?.split(':')).toHaveLength(2);
    expect(leftoverSleeps(sb)).toEqual([]);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  // Issue 13 item 12: a Jest waiting off a terminal does no periodic work while nothing changes (wakeups
  // counted: test/support/wakeups.ts). It used to read the queue every 250 ms for a wait line printed once,
  // check its parent every 500 ms and wake its sleeping main thread every second; now its wait line asks for
  // no reports on a timer (WaitLine.reportEveryMs), the lock watches the parent as it watches the owners
  // ahead (onParentGone), and the main thread sleeps until the worker is done.
  /** `seq-test run` holding the sandbox's Jest key until `release` exists. */
  const holdLock = async (release: string) => {
    const env = { SEQ_TEST_KEY: `jest-e2e-${sb.marker}` };
    const holder = sb.start(['run', '--quiet', '--', 'sh', '-c', `while [ ! -e ${release} ]; do sleep 0.05; done`], {
      env,
    });
    await waitFor(() => ticketsLeft(sb).length === 1, 60_000, 'the holder');
    return holder;
  };

  it('a waiting Jest makes no wakeups while nothing changes, and still prints its wait line once', async () => {
    const release = join(sb.dir, 'release');
    const holder = await holdLock(release);
    const waiter = new JestRun(sb, jest, []);
    await waiter.waitFor(() => waiter.output.includes('waiting for the lock'), 'Jest to queue');
    expect(await quietest(waiter.pid)).toBeLessThanOrEqual(QUIET_MAX);
    writeFileSync(release, '');
    expect((await waiter.done()).code, waiter.output).toBe(0);
    expect((await holder.finished).code).toBe(0);
    expect(waiter.output.match(/^seq-test: waiting for the lock on /gm)).toHaveLength(1);
    expect(waiter.output).toMatch(/seq-test: waited [\d.]+ m?s for the lock/);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('the process that started a sleeping Jest is killed while it waits: Jest leaves the queue', async () => {
    const release = join(sb.dir, 'release');
    const holder = await holdLock(release);
    // Started by a parent that only waits for it (an npx stand-in): `run.pid` is that parent.
    const run = new JestRun(sb, jest, [], { viaParent: true });
    await run.waitFor(() => run.output.includes('waiting for the lock'), 'Jest to queue');
    const jestPid = tree(run.pid)[1] as number;
    // Asleep without a timer: only the lock's watch of the parent can tell it.
    expect(await quietest(run.pid)).toBeLessThanOrEqual(QUIET_MAX);
    run.started.child.kill('SIGKILL'); // the parent only: Jest is re-parented
    await waitFor(() => !isAlive(jestPid), 60_000, 'the orphaned Jest to end');
    expect(run.output).toContain(`seq-test: the process that started Jest (pid ${run.pid}) is gone: leaving the queue`);
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    await nothingLeft(sb);
  });
});
