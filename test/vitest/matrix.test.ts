// The compatibility matrix of @seq-test/vitest: the same example under Vitest 3.0, 3.2 (Node 20) and 5.1
// (Node 24, fetched from the npm registry by matrix/install.mjs when the running Node is older); 4.1, the
// repo's own Vitest, gets the full set in plugin.test.ts.
// Each version meets its own traps: CLI flags and VITEST_MAX_WORKERS applied after the config hook,
// projects with their own pools or maxWorkers, Vitest 3 reusing a pool built with the first run's
// environment, Vitest 3 exiting from inside its own 'exit' listener.
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { isAlive, waitFor } from '../support/processes.js';
import {
  HOLD_TEST,
  holderCommand,
  leftoverPid,
  matrix,
  overlaps,
  prepareExample,
  projectsConfig,
  sandboxPerTest,
  spans,
  startSeqTestRun,
  startVitest,
  TOKEN_TEST,
  tickets,
  type VitestInstall,
} from './support.js';

// 4.1 (the repo's own Vitest) has the full set in plugin.test.ts.
const VERSIONS = ['3.0', '3.2', '5.1'];
let installs: Record<string, VitestInstall> = {};

beforeAll(() => {
  installs = matrix();
}, 600_000);

const sandbox = sandboxPerTest();

describe.each(VERSIONS)('Vitest %s', (name) => {
  const install = () => installs[name] as VitestInstall;
  // `test.projects` exists from Vitest 3.2 on.
  const withProjects = name !== '3.0';

  test('--maxWorkers 4 and VITEST_MAX_WORKERS=4: one file at a time; the forgotten job is ended', async () => {
    const box = sandbox();
    const project = prepareExample(box, install(), {
      files: withProjects ? { 'vitest.config.ts': projectsConfig(true), 'tests/hold.test.ts': HOLD_TEST } : {},
    });
    const result = await startVitest(box, project, ['run', '--maxWorkers', '4'], {
      env: { VITEST_MAX_WORKERS: '4', EXAMPLE_HOLD_MS: '300' },
    }).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`v${install().version}`);
    expect(spans(project)).toHaveLength(withProjects ? 5 : 4);
    expect(overlaps(spans(project))).toEqual([]);
    expect(result.stderr).toContain('seq-test: one test file at a time: --maxWorkers 4 → 1, VITEST_MAX_WORKERS=4 → 1');
    const pid = leftoverPid(project);
    expect(isAlive(pid)).toBe(false);
    expect(result.stderr).toContain(`seq-test: ended leftover process ${pid} (sleep 300) with SIGTERM`);
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the run to end');
  });

  test('--pool threads --fileParallelism: one file at a time', async () => {
    const box = sandbox();
    const project = prepareExample(box, install());
    const result = await startVitest(box, project, ['run', '--pool', 'threads', '--fileParallelism']).finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(spans(project)).toHaveLength(4);
    expect(overlaps(spans(project))).toEqual([]);
    expect(result.stderr).toContain('seq-test: one test file at a time: --fileParallelism → off');
  });

  test('queues behind `seq-test run`; SIGINT mid-run releases the lock and leaves nothing', async () => {
    const box = sandbox();
    const project = prepareExample(box, install(), { files: { 'tests/hold.test.ts': HOLD_TEST } });
    const marker = join(box.dir, 'holder');
    const holder = startSeqTestRun(box, project, holderCommand(marker));
    await waitFor(() => existsSync(`${marker}.started`), 30_000, 'seq-test run to hold the lock');
    const vitest = startVitest(box, project, ['run', 'tests/hold.test.ts']);
    await waitFor(() => /waiting for the lock/.test(vitest.output.stderr), 60_000, 'vitest to queue');
    expect(vitest.output.stderr).toMatch(
      new RegExp(
        `^seq-test: waiting for the lock on ${project.key}: position 2 of 2, held by pid ${holder.child.pid} `,
        'm',
      ),
    );
    writeFileSync(`${marker}.release`, '');
    expect((await holder.finished).code).toBe(0);
    await waitFor(() => existsSync(join(project.stamps, 'run.holding')), 60_000, 'the hold test to start');
    expect(tickets(box)).toHaveLength(1);
    vitest.child.kill('SIGINT');
    const result = await vitest.finished;
    expect(result.code).toBe(130);
    expect(tickets(box)).toEqual([]);
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the run to end');
  });

  test('watch mode: the lock per run, a fresh token per rerun', async () => {
    const box = sandbox();
    const project = prepareExample(box, install(), { files: { 'tests/token.test.ts': TOKEN_TEST } });
    const tokensFile = join(project.stamps, 'tokens');
    const tokens = () => (existsSync(tokensFile) ? readFileSync(tokensFile, 'utf8').trim().split('\n') : []);
    const watch = startVitest(box, project, ['--watch'], { env: { CI: '' } });
    await waitFor(() => tokens().length === 1 && tickets(box).length === 0, 60_000, 'the first run to end');
    const now = new Date();
    utimesSync(join(project.dir, 'tests', 'token.test.ts'), now, now);
    await waitFor(() => tokens().length === 2 && tickets(box).length === 0, 60_000, 'the rerun to end');
    const [first, second] = tokens().map((line) => line.split(' '));
    // A child started by the rerun's test carries the rerun's token (Vitest 3 would reuse the first pool).
    expect(second![1]).toBe(second![0]);
    expect(second![0]).not.toBe(first![0]);
    watch.child.kill('SIGTERM');
    expect((await watch.finished).code).toBe(143);
    await waitFor(() => box.ours().length === 0, 10_000, 'every process of the session to end');
  });
});
