import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { isAlive, REPO, type Started, type TestSandbox, waitFor } from '../support/processes.js';
import { checkout } from './golden.js';
import { type Fixture, stamps } from './helpers.js';

/**
 * What a test file writes to show that an edited config still queues and reaps: it records that it ran, then
 * starts a detached `sleep` that outlives it and records that pid: ESM for Vitest, CommonJS with Jest's globals
 * for Jest (no transform needed).
 */
export function leakingTest(dir: string, style: 'vitest' | 'jest-cjs'): string {
  const imports =
    style === 'vitest'
      ? "import { expect, it } from 'vitest';\nimport { spawn } from 'node:child_process';\nimport { appendFileSync, writeFileSync } from 'node:fs';\n"
      : "const { spawn } = require('node:child_process');\nconst { appendFileSync, writeFileSync } = require('node:fs');\n";
  return `${imports}
it('runs, and leaves a process behind', () => {
  appendFileSync(${JSON.stringify(join(dir, 'ran'))}, 'ran\\n');
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  child.unref();
  writeFileSync(${JSON.stringify(join(dir, 'leftover.pid'))}, String(child.pid));
  expect(child.pid).toBeGreaterThan(0);
});
`;
}

/** Holds the fixture's lock with `seq-test run` until `release()`; resolves once it holds. */
export async function holdLock(repo: Fixture): Promise<{ release: () => Promise<void> }> {
  const held = join(repo.sandbox.dir, 'held');
  const gate = join(repo.sandbox.dir, 'gate');
  rmSync(held, { force: true });
  rmSync(gate, { force: true });
  const holder = repo.sandbox.start(
    [
      'run',
      '--quiet',
      '--',
      process.execPath,
      '-e',
      `require('node:fs').writeFileSync(${JSON.stringify(held)}, ''); const t = setInterval(() => { if (require('node:fs').existsSync(${JSON.stringify(gate)})) clearInterval(t); }, 20);`,
    ],
    { cwd: repo.dir, env: repo.env() },
  );
  await waitFor(() => existsSync(held), 60_000, 'the holder to hold the lock');
  return {
    release: async () => {
      writeFileSync(gate, '');
      const done = await holder.finished;
      expect(done.code, done.stderr).toBe(0);
    },
  };
}

/** Waits until the fixture's queue has `count` tickets (the runner has queued behind the holder). */
export async function waitForTickets(repo: Fixture, count: number, runner: Started): Promise<void> {
  const deadline = Date.now() + 60_000; // generous: the runner boots first, on a loaded machine
  for (;;) {
    const status = await repo.cli(['status', '--json']);
    const report = JSON.parse(status.stdout) as { queues: { tickets: unknown[] }[] };
    if (report.queues.reduce((n, q) => n + q.tickets.length, 0) >= count) return;
    if (Date.now() > deadline) {
      throw new Error(`the runner did not queue; its output: ${runner.output.stdout}${runner.output.stderr}`);
    }
  }
}

/**
 * The whole check: with the lock held, the runner queues and its test does not run; once released, the test
 * runs, the run passes, and the process the test left behind has been ended.
 */
export async function expectQueuesAndReaps(repo: Fixture, startRunner: () => Started): Promise<void> {
  const hold = await holdLock(repo);
  const runner = startRunner();
  await waitForTickets(repo, 2, runner);
  expect(existsSync(join(repo.dir, 'ran')), 'the test ran while another run held the lock').toBe(false);
  await hold.release();
  const done = await runner.finished;
  expect(done.code, `${done.stdout}\n${done.stderr}`).toBe(0);
  expect(readFileSync(join(repo.dir, 'ran'), 'utf8')).toBe('ran\n');
  const pid = Number(readFileSync(join(repo.dir, 'leftover.pid'), 'utf8'));
  await waitFor(() => !isAlive(pid), 30_000, `the leftover sleep (pid ${pid}) to be reaped`);
}

/** A fixture after `seq-test init --yes`, with this repository's node_modules (the built integrations) linked in. */
export async function initialisedFixture(sandbox: TestSandbox, name: string): Promise<Fixture> {
  const repo = checkout(sandbox, name);
  const init = await repo.cli(['init', '--yes']);
  expect(init.code, init.stderr).toBe(0);
  symlinkSync(join(REPO, 'node_modules'), join(repo.dir, 'node_modules'));
  return repo;
}

/** What a run's token looks like in a stamp: the hook's command ran under `seq-test run`. */
export const TOKEN = /^\d+\.\d+\.[0-9a-f]+$/;

/**
 * A real `git commit` whose hook runs heavy commands that record `<event> <ms> <token>` in `stampFile`
 * (stampLine): with the project lock held, the commit's heavy commands wait in the queue (a second ticket) and
 * have not run; once the lock is released they run under seq-test run (each stamp carries a token) and the
 * commit succeeds. Stage what the hooks need to see first. Returns this commit's stamps.
 */
export async function expectCommitQueued(
  repo: Fixture,
  stampFile: string,
  heavy: string[],
  message = 'queued',
  env: NodeJS.ProcessEnv = {},
): Promise<ReturnType<typeof stamps>> {
  const before = stamps(stampFile).length;
  const hold = await holdLock(repo);
  const commit = repo.sandbox.start(['commit', '-q', '--allow-empty', '-m', message], {
    cwd: repo.dir,
    env: repo.env(env),
    file: 'git',
  });
  try {
    await waitForTickets(repo, 2, commit);
    const during = stamps(stampFile).slice(before);
    expect(
      during.filter((s) => heavy.includes(s.event)),
      'a heavy command ran while another run held the lock',
    ).toEqual([]);
  } finally {
    await hold.release();
  }
  const done = await commit.finished;
  expect(done.code, `${done.stdout}\n${done.stderr}`).toBe(0);
  const recorded = stamps(stampFile).slice(before);
  for (const event of heavy) {
    expect(recorded.find((s) => s.event === event)?.token, `${event} ran under seq-test run`).toMatch(TOKEN);
  }
  return recorded;
}
