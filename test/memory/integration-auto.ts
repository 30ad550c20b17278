import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandIdentity, fingerprintOf, keyDirName, predictPeak } from '@seq-test/core/internal';
import { afterEach, expect, it } from 'vitest';
import { type Started, TestSandbox, waitFor } from '../support/processes.js';

/**
 * `"slots": "auto"` through a real test runner (Vitest, Jest, pytest): the same four cases for each, run by
 * the runner's own integration reading the project settings. A fixture test file (one per runner, same
 * behaviour) appends `S <run> <monotonic ns>` to $MEM_MARKS, allocates and touches $MEM_MIB MiB, waits
 * until `<gates>/open` or `<gates>/open-<run>` exists, then appends `E <run> <ns>`. Overlap is read from
 * those marks while the first run is held at its gate: no timing guesses.
 */

/** What a runner's test file allocates (and touches): its tree's peak must show it. */
export const FIXTURE_MIB = 64;

/** The fixture's test for Vitest and Jest (each adds its imports: `appendFileSync`, `existsSync`, `join`). */
export const FIXTURE_TEST_BODY = `const run = process.env.MEM_RUN;
const mark = (kind) => appendFileSync(process.env.MEM_MARKS, kind + ' ' + run + ' ' + process.hrtime.bigint() + '\\n');
const open = () => ['open', 'open-' + run].some((name) => existsSync(join(process.env.MEM_GATES, name)));

test('holds memory until its gate opens', async () => {
  mark('S');
  const data = Buffer.alloc(Number(process.env.MEM_MIB) * 1024 * 1024, 1);
  while (!open()) await new Promise((resolve) => setTimeout(resolve, 20));
  mark('E');
  expect(data[data.length - 1]).toBe(1);
}, 600000);
`;

export interface AutoProject {
  /** Where the runner is started, and where the project settings live. */
  dir: string;
  gates: string;
  marks: string;
  /** Writes the project's seq-test settings (package.json "seqTest" or .seqtestrc.json). */
  settings(value: Record<string, unknown>): void;
}

export interface RunnerUnderTest {
  name: 'vitest' | 'jest' | 'pytest';
  /** Makes the fixture project in the sandbox. */
  prepare(sandbox: TestSandbox): AutoProject;
  /** Starts one run of the runner in the project, with the sandbox's state dir and this key. */
  start(sandbox: TestSandbox, project: AutoProject, run: string, key: string): Started;
  /** What the history's `what` must say for this project (argv checked by `argv`). */
  expected(project: AutoProject): { cwd: string; config: string | null; argv: (argv: string[]) => boolean };
}

const MiB = 1024 ** 2;

interface Mark {
  start?: bigint;
  end?: bigint;
}

export function readMarks(file: string): Map<string, Mark> {
  const byRun = new Map<string, Mark>();
  if (!existsSync(file)) return byRun;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, run, ns] = line.trim().split(' ');
    if (!kind || !run || !ns) continue;
    const mark = byRun.get(run) ?? {};
    if (kind === 'S') mark.start = BigInt(ns);
    if (kind === 'E') mark.end = BigInt(ns);
    byRun.set(run, mark);
  }
  return byRun;
}

function historyDir(sandbox: TestSandbox, key: string): string {
  return join(sandbox.stateDir, keyDirName(key), 'history');
}

interface HistoryFile {
  file: string;
  what: CommandIdentity;
  runs: { peakBytes: number; measure: string }[];
}

function histories(sandbox: TestSandbox, key: string): HistoryFile[] {
  const dir = historyDir(sandbox, key);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => ({ file: name, ...JSON.parse(readFileSync(join(dir, name), 'utf8')) }));
}

function ticketsLeft(sandbox: TestSandbox, key: string): string[] {
  const dir = join(sandbox.stateDir, keyDirName(key), 'tickets');
  return existsSync(dir) ? readdirSync(dir).filter((name) => !name.startsWith('.tmp-')) : [];
}

/** The waiting head's memory reason as `seq-test status --json` gives it, once it has one. */
async function waitReason(sandbox: TestSandbox, project: AutoProject, key: string, waiter: Started): Promise<string> {
  let exited = false;
  void waiter.exited.then(() => {
    exited = true;
  });
  let reason: string | undefined;
  // status is a process of its own; each round is a full read of the queue (bounded by waitFor's limit).
  for (const deadline = Date.now() + 120_000; reason === undefined && Date.now() < deadline && !exited; ) {
    const result = await sandbox.run(['status', '--key', key, '--json'], { cwd: project.dir });
    const tickets = JSON.parse(result.stdout).queues[0]?.tickets ?? [];
    reason = tickets.find((t: { state: string; memory?: { waitReason?: string } }) => t.state === 'waiting')?.memory
      ?.waitReason;
    if (reason === 'about to be admitted') reason = undefined;
  }
  if (reason === undefined) throw new Error(`the second run never showed a wait reason:\n${waiter.output.stderr}`);
  return reason;
}

export async function passed(run: Started, what: string): Promise<void> {
  const result = await run.finished;
  expect(result.code, `${what}:\n${result.stdout}\n${result.stderr}`).toBe(0);
}

/**
 * One whole run that learns the command's peak; returns the prediction it gives. With `holdMs`, the run is
 * held at its gate with the fixture's allocation in it until `seq-test status` has shown that allocation in
 * the holder's live memory for that long: the recorder samples at least every 500 ms, but a spike shorter
 * than a sample period is missed (docs/memory.md), and a gate opened at once frees the allocation within
 * milliseconds (pytest frees it when the test returns). The hold is the one timing here: `holdMs` is many
 * sample periods, for a loaded machine's slipping timers.
 */
async function learn(
  sandbox: TestSandbox,
  runner: RunnerUnderTest,
  project: AutoProject,
  key: string,
  holdMs = 0,
): Promise<number> {
  if (holdMs === 0) writeFileSync(join(project.gates, 'open-learn'), '');
  const run = runner.start(sandbox, project, 'learn', key);
  if (holdMs > 0) {
    await inside(project, 'learn', run);
    let since: number | undefined;
    const deadline = Date.now() + 120_000;
    while (since === undefined || Date.now() - since < holdMs) {
      if (Date.now() > deadline) throw new Error(`status never showed the learning run's ${FIXTURE_MIB} MiB`);
      const result = await sandbox.run(['status', '--key', key, '--json'], { cwd: project.dir });
      const live = JSON.parse(result.stdout).queues[0]?.tickets?.[0]?.memory?.liveBytes ?? 0;
      if (live > FIXTURE_MIB * MiB) since ??= Date.now();
    }
    writeFileSync(join(project.gates, 'open-learn'), '');
  }
  await passed(run, 'the learning run');
  const files = histories(sandbox, key);
  expect(files).toHaveLength(1);
  const predicted = predictPeak(files[0]?.runs as never);
  expect(predicted).not.toBeNull();
  return predicted as number;
}

/** Waits until `run` is inside its test (its S mark); fails with its output if it ends first. */
export async function inside(project: AutoProject, run: string, started: Started): Promise<void> {
  await waitFor(
    () => {
      if (started.child.exitCode !== null)
        throw new Error(`run ${run} ended early:\n${started.output.stdout}\n${started.output.stderr}`);
      return readMarks(project.marks).get(run)?.start !== undefined;
    },
    120_000,
    `run ${run} to be inside its test`,
  );
}

/** Starts run A, held at its gate, and waits until its test is running. */
export async function startHeld(sandbox: TestSandbox, runner: RunnerUnderTest, project: AutoProject, key: string) {
  const a = runner.start(sandbox, project, 'A', key);
  await inside(project, 'A', a);
  return a;
}

/** Opens every gate; both runs pass, and B started its test only after A had ended its own. */
async function oneAfterTheOther(project: AutoProject, a: Started, b: Started): Promise<void> {
  expect(readMarks(project.marks).get('B')?.start).toBeUndefined();
  writeFileSync(join(project.gates, 'open'), '');
  await passed(a, 'run A');
  await passed(b, 'run B');
  const marks = readMarks(project.marks);
  expect(marks.get('B')?.start as bigint).toBeGreaterThan(marks.get('A')?.end as bigint);
}

/** A fixture project in `<sandbox>/project`, its gates and marks beside it; `write` stores the settings. */
export function fixtureProject(sandbox: TestSandbox, write: (dir: string, value: object) => void): AutoProject {
  const dir = join(sandbox.dir, 'project');
  mkdirSync(dir, { recursive: true });
  return {
    dir,
    gates: join(sandbox.dir, 'gates'),
    marks: join(sandbox.dir, 'marks.log'),
    settings: (value) => write(dir, value),
  };
}

/** What every run of the fixture needs in its environment: the key, which run it is, its size, gates, marks. */
export function fixtureEnv(project: AutoProject, run: string, key: string): NodeJS.ProcessEnv {
  return {
    SEQ_TEST_KEY: key,
    MEM_RUN: run,
    MEM_MIB: String(FIXTURE_MIB),
    MEM_GATES: project.gates,
    MEM_MARKS: project.marks,
  };
}

/** The four cases of issue 17 for one runner. */
export function autoCases(runner: RunnerUnderTest): void {
  let sandbox: TestSandbox | undefined;
  let project: AutoProject | undefined;
  afterEach(async () => {
    const box = sandbox;
    if (!box) return; // a test of the caller's own
    sandbox = undefined;
    // Open every gate (a failed test may have left a run held), then nothing of ours may be left running
    // (a runner's worker may still be exiting when the runner's pipes close: give it time, bounded).
    if (project) writeFileSync(join(project.gates, 'open'), '');
    project = undefined;
    const settled = await waitFor(() => box.ours().length === 0, 60_000, 'no process left').catch(() => false);
    const left = box.ours();
    box.cleanup();
    expect(settled ? [] : left).toEqual([]);
  });
  const setUp = (settings: Record<string, unknown>) => {
    sandbox = new TestSandbox();
    project = runner.prepare(sandbox);
    mkdirSync(project.gates, { recursive: true });
    project.settings({ slots: 'auto', maxSlots: 2, ...settings });
    return { sandbox, project, key: `mem-${runner.name}-${sandbox.marker}` };
  };

  it(`${runner.name}: a whole run records its tree's peak under a fingerprint of the runner and its config; a run killed mid-way records nothing`, async () => {
    const { sandbox, project, key } = setUp({ memoryBudget: '8G' });
    await learn(sandbox, runner, project, key, 3000);
    const [history] = histories(sandbox, key);
    const expected = runner.expected(project);
    expect(history?.what.runner).toBe(runner.name);
    expect(history?.what.cwd).toBe(expected.cwd);
    expect(history?.what.config ?? null).toBe(expected.config);
    expect(expected.argv(history?.what.argv ?? []), JSON.stringify(history?.what.argv)).toBe(true);
    expect(history?.file).toBe(`${fingerprintOf(history?.what as CommandIdentity)}.json`);
    expect(history?.runs).toHaveLength(1);
    // The runner's process tree, the test's worker included, with the fixture's allocation in it.
    expect(history?.runs[0]?.peakBytes).toBeGreaterThan(FIXTURE_MIB * MiB);
    expect(history?.runs[0]?.measure).toBe('pss');

    // Interrupted inside its test (SIGTERM to the runner): no entry, no ticket left.
    const a = await startHeld(sandbox, runner, project, key);
    a.child.kill('SIGTERM');
    await a.exited;
    await a.finished;
    expect(histories(sandbox, key).map((h) => h.runs.length)).toEqual([1]);
    await waitFor(() => ticketsLeft(sandbox, key).length === 0, 30_000, 'the killed run to leave the queue');
  });

  it(`${runner.name}: with history and a budget with room for both, two runs hold at the same time`, async () => {
    const { sandbox, project, key } = setUp({ memoryBudget: '8G' });
    const predicted = await learn(sandbox, runner, project, key);
    // Room for both predictions, the reserve (128 MiB at this size) and some slack.
    project.settings({ slots: 'auto', maxSlots: 2, memoryBudget: `${Math.ceil((3 * predicted) / MiB) + 256}M` });
    const a = await startHeld(sandbox, runner, project, key);
    const b = runner.start(sandbox, project, 'B', key);
    // A cannot end before its gate opens: B inside its test now means both hold at once.
    await inside(project, 'B', b);
    expect(readMarks(project.marks).get('A')?.end).toBeUndefined();
    writeFileSync(join(project.gates, 'open'), '');
    await passed(a, 'run A');
    await passed(b, 'run B');
    expect(histories(sandbox, key).map((h) => h.runs.length)).toEqual([3]);
  });

  it(`${runner.name}: with a budget too small for two, the second waits for the first and status says why`, async () => {
    const { sandbox, project, key } = setUp({ memoryBudget: '8G' });
    const predicted = await learn(sandbox, runner, project, key);
    // One fits (prediction + reserve), two do not: whatever A uses now, A's prediction counts in full.
    const budget = Math.ceil((1.5 * predicted) / MiB) + 128;
    project.settings({ slots: 'auto', maxSlots: 2, memoryBudget: `${budget}M` });
    const a = await startHeld(sandbox, runner, project, key);
    const b = runner.start(sandbox, project, 'B', key);
    const reason = await waitReason(sandbox, project, key, b);
    expect(reason).toMatch(/^needs ~\d+(\.\d)? MiB, \d+(\.\d)? (MiB|KiB|B) available above the reserve/);
    await oneAfterTheOther(project, a, b);
  });

  it(`${runner.name}: with no history, at most one run holds (the "nothing known" rule)`, async () => {
    const { sandbox, project, key } = setUp({ memoryBudget: '8G' });
    const a = await startHeld(sandbox, runner, project, key);
    const b = runner.start(sandbox, project, 'B', key);
    expect(await waitReason(sandbox, project, key, b)).toBe(
      'no memory history for this command yet: it runs alone once',
    );
    await oneAfterTheOther(project, a, b);
    // Both ended on their own: both recorded.
    expect(histories(sandbox, key).map((h) => h.runs.length)).toEqual([2]);
  });
}
