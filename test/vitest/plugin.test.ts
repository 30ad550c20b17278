// End-to-end tests of @seq-test/vitest: real Vitest (the repo's own, 4.x) on a private copy of
// examples/vitest. Each test has its own sandbox: state dir, lock key, and a marker that finds (and ends,
// by pid) whatever it started. The compatibility matrix (Vitest 3.0, 3.2, 4.1, 5.1) is in matrix.test.ts.
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';
import {
  HOLD_TEST,
  holderCommand,
  leftoverPid,
  overlaps,
  prepareExample,
  projectsConfig,
  REPO_VITEST,
  spans,
  startSeqTestRun,
  startVitest,
  TOKEN_TEST,
  tickets,
  vitestEnv,
} from './support.js';

const sandboxes: TestSandbox[] = [];
function sandbox(): TestSandbox {
  const s = new TestSandbox();
  sandboxes.push(s);
  return s;
}
afterEach(() => {
  for (const s of sandboxes.splice(0)) s.cleanup();
});

const EXAMPLE_FILES = 4;

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

  test('VITEST_MAX_WORKERS=4 with --pool threads and --fileParallelism', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const result = await startVitest(box, project, ['run', '--pool', 'threads', '--fileParallelism'], {
      env: { VITEST_MAX_WORKERS: '4' },
    }).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(spans(project)).toHaveLength(EXAMPLE_FILES);
    expect(overlaps(spans(project))).toEqual([]);
    expect(result.stderr).toContain(
      'seq-test: one test file at a time: --fileParallelism → off, VITEST_MAX_WORKERS=4 → 1',
    );
  });

  test("projects with different pools and a project's own maxWorkers", async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, {
      files: { 'vitest.config.ts': projectsConfig(true), 'tests/hold.test.ts': HOLD_TEST },
    });
    const result = await startVitest(box, project, ['run', '--maxWorkers', '4'], {
      env: { EXAMPLE_HOLD_MS: '300' },
    }).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(spans(project)).toHaveLength(EXAMPLE_FILES + 1);
    expect(overlaps(spans(project))).toEqual([]);
    expect(result.stderr).toContain('project "spawn" maxWorkers: 3 → 1');
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

  test('the plugin registered twice (and nested in a plugin array): one ticket, one run, said once', async () => {
    const box = sandbox();
    const config = `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [seqTest(), [seqTest()]],
  test: { include: ['tests/**/*.test.ts'], setupFiles: ['tests/stamps.ts'], testTimeout: 30_000 },
});
`;
    const project = prepareExample(box, REPO_VITEST, { files: { 'vitest.config.ts': config } });
    const marker = join(box.dir, 'holder');
    const holder = startSeqTestRun(box, project, holderCommand(marker));
    await waitFor(() => existsSync(`${marker}.started`), 30_000, 'seq-test run to hold the lock');
    const vitest = startVitest(box, project, ['run', '--maxWorkers', '4']);
    await waitFor(() => /waiting for the lock/.test(vitest.output.stderr), 60_000, 'vitest to queue');
    expect(tickets(box)).toHaveLength(2); // the holder's and one of Vitest's
    writeFileSync(`${marker}.release`, '');
    const result = await vitest.finished;
    expect((await holder.finished).code).toBe(0);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(spans(project)).toHaveLength(EXAMPLE_FILES);
    expect(overlaps(spans(project))).toEqual([]);
    expect(result.stderr.match(/^seq-test: one test file at a time: .*$/gm)).toEqual([
      'seq-test: one test file at a time: --maxWorkers 4 → 1',
    ]);
    expect(result.stderr.match(/^seq-test: waiting for the lock/gm)).toHaveLength(1);
    expect(tickets(box)).toEqual([]);
  });

  test('vitest queues behind `seq-test run`, printing the same queue line', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const marker = join(box.dir, 'holder');
    const holder = startSeqTestRun(box, project, holderCommand(marker));
    await waitFor(() => existsSync(`${marker}.started`), 30_000, 'seq-test run to hold the lock');
    const vitest = startVitest(box, project, ['run']);
    await waitFor(() => /waiting for the lock/.test(vitest.output.stderr), 60_000, 'vitest to queue');
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

  test('the key from .seqtestrc.json is honoured, as by `seq-test run`, Jest and pytest', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST);
    const key = `rc-key-${box.marker}`;
    writeFileSync(join(project.dir, '.seqtestrc.json'), JSON.stringify({ key }));
    const marker = join(box.dir, 'holder');
    // The holder names the key explicitly; Vitest gets no $SEQ_TEST_KEY and must find it in the file.
    const holder = startSeqTestRun(box, project, holderCommand(marker), { env: { SEQ_TEST_KEY: key } });
    await waitFor(() => existsSync(`${marker}.started`), 30_000, 'seq-test run to hold the lock');
    const vitest = startVitest(box, project, ['run'], { env: { SEQ_TEST_KEY: undefined } });
    await waitFor(() => /waiting for the lock/.test(vitest.output.stderr), 60_000, 'vitest to queue');
    expect(vitest.output.stderr).toContain(`waiting for the lock on ${key}:`);
    writeFileSync(`${marker}.release`, '');
    expect((await holder.finished).code).toBe(0);
    const result = await vitest.finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  test('the process that started Vitest is killed (`timeout 60 npx vitest`): the run ends, the lock goes', async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, { files: { 'tests/hold.test.ts': HOLD_TEST } });
    // A parent that only starts Vitest and waits (an npx stand-in), then is killed on its own.
    const parent = box.start(
      [
        '-e',
        "require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); setInterval(() => {}, 1e9);",
        join(project.install.vitest, 'vitest.mjs'),
        'run',
        'tests/hold.test.ts',
      ],
      { file: project.install.node, cwd: project.dir, env: vitestEnv(project, { env: { EXAMPLE_HOLD_MS: '600000' } }) },
    );
    await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
    expect(tickets(box)).toHaveLength(1);
    parent.child.kill('SIGKILL');
    await parent.exited;
    await waitFor(() => tickets(box).length === 0, 60_000, 'the orphaned Vitest to leave the queue').catch((error) => {
      throw new Error(`${error.message}\n${parent.output.stdout}${parent.output.stderr}`);
    });
    await waitFor(() => box.ours().length === 0, 60_000, 'the orphaned Vitest and its leftovers to end');
    expect(parent.output.stderr).toContain(
      `seq-test: the process that started Vitest (pid ${parent.child.pid}) is gone: ending the run`,
    );
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

  test("in `vitest run` a project's own global setup already runs under the lock, with the token", async () => {
    const box = sandbox();
    const project = prepareExample(box, REPO_VITEST, {
      files: {
        // A project that does not extend the root config: Vitest runs its global setup before the root's.
        'vitest.config.ts': `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';
export default defineConfig({
  plugins: [seqTest()],
  test: { projects: [{ test: { name: 'own', include: ['tests/w*.test.ts'], globalSetup: ['./own-setup.ts'] } }] },
});
`,
        'own-setup.ts': `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
export default function () {
  writeFileSync(join(process.env.EXAMPLE_STAMP_DIR, 'own-setup'), process.env.SEQ_TEST_TOKEN ?? 'none');
}
`,
      },
    });
    const vitest = startVitest(box, project, ['run']);
    const result = await vitest.finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(readFileSync(join(project.stamps, 'own-setup'), 'utf8')).toMatch(
      new RegExp(`^${vitest.child.pid}\\.\\d+\\.[0-9a-f]+$`),
    );
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
