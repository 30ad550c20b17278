// The slower variants of test/vitest/plugin.test.ts (other pools and worker settings, a second
// registration, the key from .seqtestrc.json, a killed parent, a project's own global setup): the matrix tier
// (`npm run test:matrix`), so that `npm test` keeps one real run of each behaviour and stays quick. Same
// sandboxes and helpers as plugin.test.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { waitFor } from '../support/processes.js';
import {
  EXAMPLE_FILES,
  HOLD_TEST,
  holderCommand,
  overlaps,
  prepareExample,
  projectsConfig,
  REPO_VITEST,
  sandboxPerTest,
  spans,
  startSeqTestRun,
  startVitest,
  tickets,
  vitestEnv,
} from './support.js';

const sandbox = sandboxPerTest();

describe("plugin variants (Vitest 4, the repo's own)", () => {
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
});
