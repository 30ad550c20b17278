import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import {
  ensureJest,
  FIXTURES,
  INSTALL_TIMEOUT_MS,
  type JestInstall,
  JestRun,
  nothingLeft,
  overlapping,
  ticketsLeft,
  VERSIONS,
} from './helpers.js';

// The other ways to switch it on: inline projects[] in an ES module config (the ESM build), the preset,
// and the preset under a config that replaces its globalSetup (the runner then takes the lock itself).

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

  /** Every file ran in the same single worker process (not Jest's own), one after another. */
  const serialInOneWorker = (run: JestRun, files: string[]) => {
    const stamps = run.fileStamps();
    expect(stamps.map((s) => s.file).sort()).toEqual([...files].sort());
    const pids = new Set(stamps.map((s) => s.pid));
    expect(pids.size).toBe(1);
    expect(pids.has(run.pid)).toBe(false);
    expect(overlapping(stamps.map((s) => ({ start: s.start, end: s.end, label: s.file })))).toEqual([]);
  };

  it('projects[] (jest.config.mjs): every project runs one file at a time despite -w 4', async () => {
    const run = new JestRun(sb, jest, ['-w', '4'], {
      config: join(FIXTURES, 'projects.config.mjs'),
      freshCache: true,
    });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toContain('Ran all test suites in 2 projects.');
    expect(run.output).toContain('(maxWorkers 4 → 1)');
    serialInOneWorker(run, ['api.test.js', 'leaky.test.js', 'run.test.js', 'server.test.js']);
    expect(run.hook('globalSetup')?.token).toMatch(new RegExp(`^${run.pid}\\.`));
    expect(run.output).toMatch(/ended 1 process the tests left running: \d+ sleep 300$/m);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it("preset: '@seq-test/jest' forces one worker, takes the lock and reaps", async () => {
    const run = new JestRun(sb, jest, ['--maxWorkers=4'], {
      config: join(FIXTURES, 'preset.config.cjs'),
      freshCache: true,
    });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toContain('(maxWorkers 4 → 1)');
    serialInOneWorker(run, ['leaky.test.js', 'run.test.js', 'server.test.js']);
    expect(run.output).toMatch(
      /seq-test: waited [\d.]+ m?s for the lock on [\w-]+; ended 1 process the tests left running: \d+ sleep 300$/m,
    );
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('the preset under a config with its own globalSetup: the runner takes the lock and says so', async () => {
    const run = new JestRun(sb, jest, ['-w', '4'], { config: join(FIXTURES, 'preset-own-setup.config.cjs') });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toContain("seq-test: this config's globalSetup is not @seq-test/jest's");
    serialInOneWorker(run, ['api.test.js', 'leaky.test.js', 'run.test.js', 'server.test.js']);
    expect(run.hook('globalSetup')?.token).toBeNull(); // ran before the lock: the documented limit
    expect(run.output).toMatch(/ended 1 process the tests left running: \d+ sleep 300$/m);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it("a failing globalSetup of the project's own: Jest exits 1 naming it, the lock is released, nothing left", async () => {
    const run = new JestRun(sb, jest, [], { config: join(FIXTURES, 'failing-setup.config.cjs') });
    const result = await run.done();
    expect(result.code, run.output).toBe(1);
    expect(run.output).toMatch(/\(your globalSetup, \S*failing-setup\.cjs\) the database did not start/);
    expect(run.output).toMatch(/ended 1 process the tests left running: \d+ sleep 300$/m);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('SEQ_TEST_DISABLE=1: no lock taken, but the leftover is still ended', async () => {
    const run = new JestRun(sb, jest, [], { env: { SEQ_TEST_DISABLE: '1' } });
    const result = await run.done();
    expect(result.code, run.output).toBe(0);
    expect(run.output).toContain('seq-test: SEQ_TEST_DISABLE=1: running without the lock');
    expect(run.output).toMatch(
      /ran without the lock \(SEQ_TEST_DISABLE=1\); ended 1 process the tests left running: \d+ sleep 300$/m,
    );
    expect(ticketsLeft(sb)).toEqual([]);
    await nothingLeft(sb);
  });
});
