import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REPO, type TestSandbox as Sandbox, TestSandbox } from '../support/processes.js';
import {
  ensureJest,
  FIXTURES,
  INSTALL_TIMEOUT_MS,
  type JestInstall,
  nothingLeft,
  ticketsLeft,
  VERSIONS,
} from './helpers.js';

// A suite shaped like the real ones that broke (issue 15): tests that read process.argv through a
// commander-style parser (which calls process.exit(1) on an option it does not know), stub process.exit,
// change process.env and process.cwd(), and spawn executables. Under @seq-test/jest every test file must see
// what it sees under plain Jest with workers — a worker process of its own, not Jest's main process, whose
// argv holds Jest's flags — whatever flags Jest is given, on Jest 29 and 30.

const SUITE = join(FIXTURES, 'faithful');
const PLAIN = join(SUITE, 'plain.config.cjs');
const WRAPPED = join(SUITE, 'jest.config.cjs');
const DOUBLE = join(SUITE, 'double.config.cjs');

interface Outcome {
  code: number | null;
  output: string;
  pid: number;
  /** test file → status, and "file › test" → status, from Jest's --json report. */
  results: Record<string, string>;
  files: Array<{ file: string; pid: number; ppid: number }>;
  hooks: Array<{ hook: string; pid: number }>;
}

async function jestRun(sb: Sandbox, jest: JestInstall, name: string, args: string[]): Promise<Outcome> {
  const stamps = join(sb.dir, `stamps-${name}.jsonl`);
  const report = join(sb.dir, `report-${name}.json`);
  const started = sb.start(
    [
      jest.bin,
      // An empty cache: no timings, so plain Jest does start workers for these fast files.
      '--cacheDirectory',
      join(sb.dir, `cache-${name}`),
      '--json',
      '--outputFile',
      report,
      ...args,
    ],
    {
      file: process.execPath,
      cwd: REPO,
      env: { SEQ_TEST_KEY: `jest-faithful-${sb.marker}`, FAITHFUL_STAMPS: stamps, NO_COLOR: '1', CI: 'true' },
    },
  );
  const pid = started.child.pid as number;
  // A looping Jest (the double wrap before its fix) grew past 1 GB in seconds: end it, by pid, long before.
  const watchdog = setInterval(() => {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(safeRead(`/proc/${pid}/status`))?.[1] ?? 0);
    if (rss > 1024 * 1024) started.child.kill('SIGKILL');
  }, 500);
  const { code } = await started.exited.finally(() => clearInterval(watchdog));
  await started.finished;
  const output = started.output.stdout + started.output.stderr;
  const results: Record<string, string> = {};
  if (existsSync(report)) {
    const json = JSON.parse(readFileSync(report, 'utf8')) as {
      testResults: Array<{
        name: string;
        status: string;
        assertionResults: Array<{ fullName: string; status: string }>;
      }>;
    };
    for (const file of json.testResults) {
      results[basename(file.name)] = file.status;
      for (const test of file.assertionResults) results[`${basename(file.name)} › ${test.fullName}`] = test.status;
    }
  }
  const lines = existsSync(stamps) ? readFileSync(stamps, 'utf8').split('\n').filter(Boolean) : [];
  const records = lines.map((line) => JSON.parse(line));
  return {
    code,
    output,
    pid: started.child.pid as number,
    results,
    files: records.filter((r) => r.file),
    hooks: records.filter((r) => r.hook),
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

describe.each(VERSIONS)('%s', (name) => {
  let jest: JestInstall;
  let sb: TestSandbox;
  let reference: Outcome;
  beforeAll(async () => {
    jest = await ensureJest(name);
    const sandbox = new TestSandbox();
    try {
      reference = await jestRun(sandbox, jest, 'plain', ['--config', PLAIN, '-w', '4']);
    } finally {
      sandbox.cleanup();
    }
  }, INSTALL_TIMEOUT_MS);
  beforeEach(() => {
    sb = new TestSandbox();
  });
  afterEach(() => {
    sb.cleanup();
  });

  it('control: plain Jest -w 4 passes every test, in worker processes', () => {
    expect(reference.code, reference.output).toBe(0);
    expect(Object.keys(reference.results)).toHaveLength(11 + 16);
    expect(Object.values(reference.results).every((status) => status === 'passed')).toBe(true);
    expect(reference.files.some((f) => f.pid === reference.pid)).toBe(false);
  });

  it.each([
    ['-w 4', ['--config', WRAPPED, '-w', '4']],
    ['--ci', ['--config', WRAPPED, '--ci']],
    ['-c file', ['-c', WRAPPED]],
    ['a path argument', ['--config', WRAPPED, join(SUITE, 'test')]],
  ])('wrapped, with %s: the same results, every file in one worker process', async (label, args) => {
    const run = await jestRun(sb, jest, label.replace(/\W+/g, '-'), args);
    expect(run.code, run.output).toBe(reference.code);
    expect(run.results).toEqual(reference.results);
    // One worker process, a child of Jest's main process, ran every file (one at a time, being one process).
    const pids = new Set(run.files.map((f) => f.pid));
    expect(run.files).toHaveLength(11);
    expect(pids.size, JSON.stringify(run.files)).toBe(1);
    expect(pids.has(run.pid)).toBe(false);
    expect(run.files[0]?.ppid).toBe(run.pid);
    // The project's own hooks ran once each, in Jest's main process.
    expect(run.hooks).toEqual([
      { hook: 'globalSetup', pid: run.pid },
      { hook: 'globalTeardown', pid: run.pid },
    ]);
    // Nothing happened worth a line: no wait, nothing left running.
    expect(run.output).not.toMatch(/seq-test: (waited|ran|no process)/);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });

  it('--runInBand is honoured: files run in Jest’s own process, as the user asked', async () => {
    // The argv test would rightly kill an in-band run (Jest's argv holds -i), as it does plain Jest's.
    const run = await jestRun(sb, jest, 'in-band', ['--config', WRAPPED, '-i', '--testPathIgnorePatterns', 'argv']);
    expect(run.code, run.output).toBe(0);
    expect(run.files).toHaveLength(10);
    expect(new Set(run.files.map((f) => f.pid))).toEqual(new Set([run.pid]));
  });

  it('a config wrapped twice (a wrapped base spread into withSeqTest) runs normally under one lock', async () => {
    const run = await jestRun(sb, jest, 'double', ['--config', DOUBLE, '-w', '4']);
    expect(run.code, run.output).toBe(0);
    expect(run.results).toEqual(reference.results);
    // The user's global setup and teardown ran once each; our own hooks were not taken for theirs.
    expect(run.hooks).toEqual([
      { hook: 'globalSetup', pid: run.pid },
      { hook: 'globalTeardown', pid: run.pid },
    ]);
    expect(new Set(run.files.map((f) => f.pid)).size).toBe(1);
    await nothingLeft(sb);
    expect(ticketsLeft(sb)).toEqual([]);
  });
});
