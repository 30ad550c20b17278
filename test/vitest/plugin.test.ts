// End-to-end tests of @seq-test/vitest: real Vitest (the repo's own, 4.x) on a private copy of
// examples/vitest. Each test has its own sandbox: state dir, lock key, and a marker that finds (and ends,
// by pid) whatever it started. The compatibility matrix (Vitest 3.0, 3.2, 4.1, 5.1) is in matrix.test.ts, and
// the slower variants (other pools, a second registration, a killed parent, …) in plugin-variants.matrix.test.ts.
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isAlive, waitFor } from '../support/processes.js';
import { QUIET_MAX, quietest } from '../support/wakeups.js';
import {
  EXAMPLE_FILES,
  HOLD_TEST,
  leftoverPid,
  overlaps,
  prepareExample,
  REPO_VITEST,
  sandboxPerTest,
  spans,
  startSeqTestRun,
  startVitest,
  TOKEN_TEST,
  tickets,
  vitestBehindHolder,
  vitestEnv,
} from './support.js';

const sandbox = sandboxPerTest();

describe('one test file at a time', () => {
  test('--maxWorkers 4: files never overlap, and the override is said once', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const result = await startVitest(box, project, ['run', '--maxWorkers', '4']).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const ran = spans(project);
    expect(ran).toHaveLength(EXAMPLE_FILES);
    expect(overlaps(ran)).toEqual([]);
    expect(result.stderr.match(/^seq-test: one test file at a time: .*$/gm)).toEqual([
      'seq-test: one test file at a time: --maxWorkers 4 → 1',
    ]);
  });
});

describe('leftovers', () => {
  test('the background job a test forgot is ended after the run and named', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const result = await startVitest(box, project, ['run']).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const pid = leftoverPid(project);
    expect(isAlive(pid)).toBe(false);
    expect(result.stderr).toMatch(
      new RegExp(`^seq-test: ended leftover process ${pid} \\(sleep 300\\) with SIGTERM$`, 'm'),
    );
    // Nothing of the run survives it: no worker, no watchdog, no child.
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the run to end');
  });
});

describe('the project lock', () => {
  test('two concurrent runs of the same project both pass and do not overlap', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const first = startVitest(box, project, ['run'], { runId: 'a' });
    await waitFor(() => tickets(box).length > 0, 30_000, 'the first run to join the queue');
    const second = startVitest(box, project, ['run'], { runId: 'b' });
    const [a, b] = await Promise.all([first.finished, second.finished]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const runA = spans(project, 'a');
    const runB = spans(project, 'b');
    expect(runA).toHaveLength(EXAMPLE_FILES);
    expect(runB).toHaveLength(EXAMPLE_FILES);
    const [early, late] = runA[0]!.start < runB[0]!.start ? [runA, runB] : [runB, runA];
    expect(Math.max(...early.map((s) => s.end))).toBeLessThan(Math.min(...late.map((s) => s.start)));
    const waited = [a, b].filter((r) => /^seq-test: waiting for the lock on /m.test(r.stderr));
    expect(waited).toHaveLength(1);
    expect(waited[0]!.stderr).toMatch(/^seq-test: our turn after /m);
  });

  test('vitest queues behind `seq-test run`, printing the same queue line', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const marker = join(box.dir, 'holder');
    const { holder, vitest } = await vitestBehindHolder(box, project, marker);
    writeFileSync(`${marker}.release`, '');
    const result = await vitest.finished;
    expect((await holder.finished).code).toBe(0);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      new RegExp(
        `^seq-test: waiting for the lock on ${project.key}: position 2 of 2, held by pid ${holder.child.pid} \\(.*node -e .*\\) for [0-9.]+ m?s; waited [0-9]+ ms$`,
        'm',
      ),
    );
    const heldUntil = Number(readFileSync(`${marker}.ended`, 'utf8'));
    expect(Math.min(...spans(project).map((s) => s.start))).toBeGreaterThan(heldUntil);
  });

  // Issue 13 item 12: it used to read the queue every 250 ms for a wait line that is printed once off a
  // terminal; now it asks for reports only where a live line is drawn (WaitLine.reportEveryMs), as
  // `seq-test run` does. Wakeups counted: test/support/wakeups.ts.
  test('a waiting Vitest makes no wakeups while nothing changes, and still prints its wait line once', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const marker = join(box.dir, 'holder');
    const { holder, vitest } = await vitestBehindHolder(box, project, marker);
    expect(await quietest(vitest.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    writeFileSync(`${marker}.release`, '');
    const result = await vitest.finished;
    expect((await holder.finished).code).toBe(0);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr.match(/^seq-test: waiting for the lock on /gm)).toHaveLength(1);
    expect(result.stderr).toMatch(/^seq-test: our turn after /m);
    expect(spans(project)).toHaveLength(EXAMPLE_FILES);
  });

  test('`seq-test run` queues behind vitest', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, { files: { 'tests/hold.test.ts': HOLD_TEST } });
    const vitest = startVitest(box, project, ['run', 'tests/hold.test.ts'], { env: { EXAMPLE_HOLD_MS: '1500' } });
    await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
    const marker = join(box.dir, 'after');
    const cli = startSeqTestRun(box, project, [
      process.execPath,
      '-e',
      `require('fs').writeFileSync('${marker}', String(Date.now()))`,
    ]);
    const [v, c] = await Promise.all([vitest.finished, cli.finished]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(
      new RegExp(
        `^seq-test: waiting for the lock on ${project.key}: .*held by pid ${vitest.child.pid} \\(vitest run tests/hold\\.test\\.ts\\)`,
        'm',
      ),
    );
    expect(Number(readFileSync(marker, 'utf8'))).toBeGreaterThan(spans(project)[0]!.end);
  });

  test('inside `seq-test run` it runs at once (nested in the outer run, no deadlock)', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const outer = box.start(['run', '--', project.install.node, join(project.install.vitest, 'vitest.mjs'), 'run'], {
      cwd: project.dir,
      env: vitestEnv(project),
    });
    const result = await outer.finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).not.toContain('waiting for the');
    expect(spans(project)).toHaveLength(EXAMPLE_FILES);
    // The plugin (inside) reaps the forgotten job; the outer run finds nothing left.
    expect(result.stderr).toMatch(new RegExp(`ended leftover process ${leftoverPid(project)} \\(sleep 300\\)`));
    expect(tickets(box)).toEqual([]);
  });

  test('SIGINT mid-run: the lock is released and no process is left', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, { files: { 'tests/hold.test.ts': HOLD_TEST } });
    const vitest = startVitest(box, project, ['run', 'tests/hold.test.ts']);
    await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
    expect(tickets(box)).toHaveLength(1);
    vitest.child.kill('SIGINT');
    const result = await vitest.finished;
    expect(result.code).toBe(130);
    expect(tickets(box)).toEqual([]);
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the run to end');
    const free = await startSeqTestRun(box, project, ['true'], { args: ['--no-wait'] }).finished;
    expect(free.code, free.stderr).toBe(0);
  });
});

describe('watch mode', () => {
  test('holds the lock per run, not while idle; each rerun exports its own token', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, { files: { 'tests/token.test.ts': TOKEN_TEST } });
    const tokensFile = join(project.stamps, 'tokens');
    const tokens = () => (existsSync(tokensFile) ? readFileSync(tokensFile, 'utf8').trim().split('\n') : []);
    const watch = startVitest(box, project, ['--watch'], { env: { CI: '' } });
    await waitFor(() => tokens().length === 1 && tickets(box).length === 0, 60_000, 'the first run to end');
    // Idle: the lock is free for anyone else.
    const free = await startSeqTestRun(box, project, ['true'], { args: ['--no-wait'] }).finished;
    expect(free.code, free.stderr).toBe(0);
    const now = new Date();
    utimesSync(join(project.dir, 'tests', 'token.test.ts'), now, now);
    await waitFor(() => tokens().length === 2 && tickets(box).length === 0, 60_000, 'the rerun to end');
    const [first, second] = tokens().map((line) => line.split(' '));
    // The test and its child see the same token; each run has its own.
    expect(first![0]).toBe(first![1]);
    expect(second![0]).toBe(second![1]);
    expect(first![0]).not.toBe(second![0]);
    expect(first![0]).toMatch(new RegExp(`^${watch.child.pid}\\.\\d+\\.[0-9a-f]+$`));
    watch.child.kill('SIGTERM');
    expect((await watch.finished).code).toBe(143);
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the session to end');
  });
});
