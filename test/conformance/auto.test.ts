import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  type AdmissionInput,
  decideAdmission,
  fingerprintOf,
  keyDirName,
  predictPeak,
  type RunRecord,
  readHistory,
  SAMPLE_SCHEDULE,
  type SamplePhase,
  ticketAdmission,
} from '@seq-test/core/internal';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LEAVE_BEHIND, seedPeak } from '../support/lingering.js';
import { isAlive, type Started, TestSandbox, waitFor } from '../support/processes.js';
import { CONTENDER, NO_PYTHON, PYTHON, requireInterpreter, TEMPLATES } from './helpers.js';

/**
 * Protocol version 2 (`"slots": "auto"`) in both languages: the admission rule, the prediction, the
 * fingerprint and the history reader give the same answers on the same inputs, and a queue of TypeScript
 * and Python runs in auto mode keeps FIFO order and the budget.
 */

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Runs a Python snippet with seq_test_lock imported as L, the spec on stdin; returns its JSON output. */
function python(sandbox: TestSandbox, body: string, spec: unknown): unknown {
  const script = `import json, sys\nsys.path.insert(0, ${JSON.stringify(TEMPLATES)})\nimport seq_test_lock as L\nspec = json.load(sys.stdin)\n${body}`;
  return JSON.parse(
    execFileSync(PYTHON, ['-c', script], { input: JSON.stringify(spec), env: sandbox.env(), encoding: 'utf8' }),
  );
}

// Allocates (and touches) the MiB in ./size, logs "S/E <ticket> <ns>" around its life, lives ./ms ms.
const GROW = `
const fs = require('node:fs');
const log = (k) => fs.appendFileSync('stamps.log', k + ' ' + process.env.SEQ_TEST_TICKET + ' ' + process.hrtime.bigint() + '\\n');
log('S');
const data = Buffer.alloc(Number(fs.readFileSync('size', 'utf8')) * 1024 * 1024, 1);
setTimeout(() => { log('E'); process.exit(data[0] === 1 ? 0 : 1); }, Number(fs.readFileSync('ms', 'utf8')));
`;

/** Most runs at once, the tickets in the order they started, and for each (in that order) whether it ran alone. */
function overlaps(log: string): { max: number; order: string[]; alone: boolean[] } {
  const events: [bigint, number, string][] = [];
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, ticket, ns] = line.split(' ') as [string, string, string];
    events.push([BigInt(ns), kind === 'S' ? 1 : -1, ticket]);
  }
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let open = 0;
  let max = 0;
  const order: string[] = [];
  const shared = new Set<string>();
  const running = new Set<string>();
  for (const [, delta, ticket] of events) {
    open += delta;
    max = Math.max(max, open);
    if (delta === 1) {
      order.push(ticket);
      if (running.size > 0) for (const t of [ticket, ...running]) shared.add(t);
      running.add(ticket);
    } else running.delete(ticket);
  }
  return { max, order, alone: order.map((t) => !shared.has(t)) };
}

interface GrowFiles {
  /** MiB the command allocates and touches. */
  size?: number;
  /** How long it lives after, in ms. */
  ms?: number;
  /** The project's .seqtestrc.json. */
  settings?: Record<string, unknown>;
}
type Env = Record<string, string>;
type Starter = (env: Env) => Started;

/** A project in the sandbox whose command, `node grow.cjs`, runs GROW; the runs of it, in either language. */
class GrowProject {
  readonly cwd: string;
  readonly command = ['node', 'grow.cjs'];

  constructor(
    private readonly sandbox: TestSandbox,
    files: Required<GrowFiles>,
  ) {
    this.cwd = join(sandbox.dir, 'project');
    mkdirSync(this.cwd);
    writeFileSync(join(this.cwd, 'grow.cjs'), GROW);
    this.set(files);
  }

  /** Rewrites the files given, for the runs that start after. */
  set({ size, ms, settings }: GrowFiles): void {
    if (size !== undefined) writeFileSync(join(this.cwd, 'size'), String(size));
    if (ms !== undefined) writeFileSync(join(this.cwd, 'ms'), String(ms));
    if (settings) writeFileSync(join(this.cwd, '.seqtestrc.json'), JSON.stringify(settings));
  }

  /** `seq-test run` of the command. */
  readonly ts: Starter = (env) => this.sandbox.start(['run', '--quiet', '--', ...this.command], { env, cwd: this.cwd });

  /** The Python contender running the command, with its own fingerprint (runner "python"). */
  readonly py: Starter = (env) => this.python(env, []);

  /** The Python contender with the fingerprint `seq-test run` gives the command: one history for both. */
  readonly pyAsRun: Starter = (env) => this.python(env, ['--as-run']);

  private python(env: Env, flags: string[]): Started {
    return this.sandbox.start([CONTENDER, '--quiet', ...flags, '--', ...this.command], {
      file: PYTHON,
      env,
      cwd: this.cwd,
    });
  }

  /**
   * Queues the runs one at a time (ticket order = this order; each lives far longer than the 150 ms between
   * two, so all are queued before the first ends), then waits for all, each to exit 0; returns their overlaps.
   */
  async round(starters: readonly Starter[], env: Env): Promise<ReturnType<typeof overlaps>> {
    const stamps = join(this.cwd, 'stamps.log');
    writeFileSync(stamps, '');
    const started = [];
    for (const start of starters) {
      started.push(start(env));
      await new Promise((r) => setTimeout(r, 150));
    }
    const results = await Promise.all(started.map((s) => s.finished));
    expect(results.map((r) => [r.code, r.stderr])).toEqual(results.map((r) => [0, r.stderr]));
    return overlaps(stamps);
  }
}

describe.skipIf(NO_PYTHON)('conformance: protocol version 2 (memory-aware admission)', () => {
  let sandbox: TestSandbox;
  beforeAll(() => requireInterpreter(PYTHON));
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it('the admission rule gives the same verdict and text in both languages, on every case of a grid', () => {
    sandbox = new TestSandbox();
    const sizes = [null, 0, 100 * MiB, 600 * MiB, 1.5 * GiB];
    const inputs: AdmissionInput[] = [];
    for (const maxSlots of [1, 3])
      for (const waitingAhead of [0, 1])
        for (const holderCount of [0, 1, 2])
          for (const head of sizes)
            for (const predicted of sizes)
              for (const current of [null, 250 * MiB])
                for (const available of [null, 256 * MiB, 3 * GiB])
                  for (const budget of [null, 2 * GiB])
                    for (const ended of [0, 1])
                      for (const headCurrent of [null, 300 * MiB])
                        inputs.push({
                          maxSlots,
                          waitingAhead,
                          holders: Array.from({ length: holderCount }, (_, i) => ({
                            predictedBytes: predicted,
                            currentBytes: current,
                            // `ended` holders' commands have ended: only their leftovers linger.
                            commandEnded: i < ended,
                          })),
                          headPredictedBytes: head,
                          headCurrentBytes: headCurrent,
                          availableBytes: available,
                          budgetBytes: budget,
                          reserveBytes: 128 * MiB,
                        });
    const out = python(
      sandbox,
      `print(json.dumps([list(L.decide_admission(i["maxSlots"], i["waitingAhead"], [(h["predictedBytes"], h["currentBytes"], h["commandEnded"]) for h in i["holders"]], i["headPredictedBytes"], i["availableBytes"], i["reserveBytes"], i["budgetBytes"], i["headCurrentBytes"])) for i in spec]))`,
      inputs,
    ) as [boolean, string, string][];
    expect(out).toHaveLength(inputs.length);
    const ts = inputs.map((i) => {
      const v = decideAdmission(i);
      return [v.admit, v.reason, v.text];
    });
    expect(out).toEqual(ts);
  });

  it('both read a ticket’s admission field the same, endedAt included (garbage: still running)', () => {
    sandbox = new TestSandbox();
    const base = { mode: 'auto', maxSlots: 2, fingerprint: 'f'.repeat(24), predictedBytes: 5 * MiB };
    const fields = [
      base,
      { ...base, endedAt: null },
      { ...base, endedAt: 1_764_000_000_000 },
      { ...base, endedAt: 0 },
      { ...base, endedAt: -1 },
      { ...base, endedAt: 1.5 },
      { ...base, endedAt: '1764000000000' },
      { ...base, endedAt: true },
      { ...base, endedAt: 2 ** 60 },
      { ...base, predictedBytes: -3, endedAt: 5 },
    ];
    const out = python(
      sandbox,
      'print(json.dumps([[a["predictedBytes"], a["endedAt"]] for a in (L.ticket_admission({"admission": f}) for f in spec)]))',
      fields,
    );
    expect(out).toEqual(
      fields.map((admission) => {
        const read = ticketAdmission({ admission });
        return [read?.predictedBytes, read?.endedAt];
      }),
    );
  });

  it('fingerprints, predictions and the history reader agree (hostile files included)', () => {
    sandbox = new TestSandbox();
    const whats = [
      { argv: ['npm', 'test'], cwd: '/home/me/app' },
      { argv: ['pytest', '-x', 'tests/ü ñ'], cwd: '/tmp/日本語', runner: 'pytest' },
      { argv: ['vitest', 'run'], cwd: '/p', runner: 'vitest', config: '/p/vitest.config.ts' },
      { argv: ['a"b\\\\c', '\u0001'], cwd: '/' },
    ];
    const run = (peakBytes: number): RunRecord => ({ peakBytes, durationMs: 5, endedAt: 1, measure: 'pss' });
    const series = [
      [],
      [run(100)],
      [...Array(9).fill(run(100 * MiB)), run(GiB)],
      Array.from({ length: 15 }, (_, i) => run((i + 1) * MiB)),
    ];
    const queueDir = join(sandbox.dir, 'q');
    mkdirSync(join(queueDir, 'history'), { recursive: true, mode: 0o700 });
    const fp = fingerprintOf(whats[0] as (typeof whats)[0]);
    const files: Record<string, string> = {
      good: JSON.stringify({ v: 2, fingerprint: fp, runs: [run(MiB), { peakBytes: 1e300 }, run(2 * MiB), 'x'] }),
      garbage: '{"v":2,',
      version: JSON.stringify({ v: 1, fingerprint: fp, runs: [] }),
      array: '[]',
    };
    const readings: unknown[] = [];
    const pyReadings = [];
    for (const content of Object.values(files)) {
      writeFileSync(join(queueDir, 'history', `${fp}.json`), content);
      const h = readHistory(queueDir, fp);
      readings.push([h.runs, h.problems]);
      pyReadings.push(
        python(sandbox, 'print(json.dumps(list(L.read_history(spec["dir"], spec["fp"]))))', { dir: queueDir, fp }),
      );
    }
    const linked = join(queueDir, 'history', `${fp}.json`);
    const target = join(sandbox.dir, 'target.json');
    writeFileSync(target, files.good as string);
    execFileSync('rm', [linked]);
    symlinkSync(target, linked);
    readings.push([readHistory(queueDir, fp).runs, readHistory(queueDir, fp).problems]);
    pyReadings.push(
      python(sandbox, 'print(json.dumps(list(L.read_history(spec["dir"], spec["fp"]))))', { dir: queueDir, fp }),
    );
    chmodSync(join(queueDir, 'history'), 0o777);
    readings.push([readHistory(queueDir, fp).runs, readHistory(queueDir, fp).problems]);
    pyReadings.push(
      python(sandbox, 'print(json.dumps(list(L.read_history(spec["dir"], spec["fp"]))))', { dir: queueDir, fp }),
    );
    expect(pyReadings).toEqual(readings);
    const out = python(
      sandbox,
      'print(json.dumps({"fps": [L.fingerprint_of(w["argv"], w["cwd"], w.get("runner"), w.get("config")) for w in spec["whats"]], "predictions": [L.predict_peak(s) for s in spec["series"]]}))',
      { whats, series },
    );
    expect(out).toEqual({ fps: whats.map((w) => fingerprintOf(w)), predictions: series.map((s) => predictPeak(s)) });
  });

  it('the prediction gives the same figures in both languages, and the rule’s: 1, 2, 4, 5 and 10 runs, equal and spread', () => {
    sandbox = new TestSandbox();
    const runs = (...mib: number[]): RunRecord[] =>
      mib.map((m) => ({ peakBytes: m * MiB, durationMs: 5, endedAt: 1, measure: 'pss' }));
    // [peaks in MiB, the prediction in MiB before rounding up]: the larger of p × (1 + margin(n)) and
    // (p + (p − lowest) / (n − 1)) × (1 + m), p the nearest-rank 90th percentile of the last ten, m = 5 % plus
    // (highest − lowest) / p, at most 15 % (from five runs on, m is margin(n) too).
    const cases: [number[], number][] = [
      [[300], 300 * 1.75],
      [[300, 300], 300 * 1.6],
      [[150, 300], (300 + 150) * 1.15],
      [[300, 300, 300, 300], 300 * 1.3],
      [[501, 489, 365, 363], 501 * 1.3],
      [[363, 365, 489, 501, 627], (627 + 264 / 4) * 1.15],
      [[300, 300, 300, 300, 300], 300 * 1.05],
      [Array(10).fill(300), 300 * 1.05],
      [[...Array(9).fill(300), 3000], 300 * 1.15],
      [[...Array(9).fill(300), 320], 300 * (1 + 0.05 + 20 / 300)],
      [[432, 433, 433, 434, 434, 435, 435, 435, 436, 436], (436 + 4 / 9) * (1 + 0.05 + 4 / 436)],
      [[290, 300, 300, 300, 300], (300 + 10 / 4) * (1 + 0.05 + 10 / 300)],
      [Array.from({ length: 10 }, (_, i) => 100 * (i + 1)), (900 + 800 / 9) * 1.15],
      [[7, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000], 1000 * 1.05],
    ];
    const series = cases.map(([mib]) => runs(...mib));
    const ts = series.map((s) => predictPeak(s));
    expect(ts).toEqual(cases.map(([, mib]) => Math.ceil(mib * MiB)));
    expect(python(sandbox, 'print(json.dumps([L.predict_peak(s) for s in spec]))', series)).toEqual(ts);
  });

  it('TypeScript and Python runs ending at once append to one history without losing an entry (the history lock)', async () => {
    sandbox = new TestSandbox();
    const internal = fileURLToPath(new URL('../../packages/core/dist/internal.js', import.meta.url));
    // Each waits for a round number on stdin (the gate) and appends one run, its peak its writer number.
    const ts = `import { recordRun } from ${JSON.stringify(internal)};
import { createInterface } from 'node:readline';
const [dir, index] = process.argv.slice(1);
process.stdout.write('ready\\n');
for await (const round of createInterface({ input: process.stdin })) {
  const problem = recordRun(dir, { argv: ['round', round], cwd: '/' }, { peakBytes: Number(index), durationMs: 1, endedAt: 1, measure: 'rss' });
  process.stdout.write((problem ?? 'ok') + '\\n');
}`;
    const py = `import sys
sys.path.insert(0, ${JSON.stringify(TEMPLATES)})
import seq_test_lock as L
print("ready", flush=True)
for line in sys.stdin:
    problem = L.record_run(sys.argv[1], {"argv": ["round", line.strip()], "cwd": "/"}, {"peakBytes": int(sys.argv[2]), "durationMs": 1, "endedAt": 1, "measure": "rss"})
    print(problem or "ok", flush=True)`;
    const queueDir = join(sandbox.dir, 'q');
    mkdirSync(queueDir);
    const writers = [1, 2, 3, 4, 5, 6, 7, 8].map((index) =>
      index % 2
        ? spawn(process.execPath, ['--input-type=module', '-e', ts, queueDir, String(index)], { env: sandbox.env() })
        : spawn(PYTHON, ['-c', py, queueDir, String(index)], { env: sandbox.env() }),
    );
    try {
      const lines = writers.map((w) => createInterface({ input: w.stdout })[Symbol.asyncIterator]());
      const answers = () => Promise.all(lines.map(async (line) => (await line.next()).value));
      expect(await answers()).toEqual(Array(8).fill('ready'));
      for (let round = 1; round <= 8; round++) {
        for (const w of writers) w.stdin.write(`${round}\n`);
        expect(await answers()).toEqual(Array(8).fill('ok'));
        const history = readHistory(queueDir, fingerprintOf({ argv: ['round', String(round)], cwd: '/' }));
        expect(history.runs.map((r) => r.peakBytes).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      }
    } finally {
      for (const w of writers) {
        w.stdin.end();
        if (w.exitCode === null) await new Promise((resolve) => w.once('exit', resolve));
      }
    }
  });

  it('both sample a holder’s tree on the same schedule', () => {
    sandbox = new TestSandbox();
    const elapsed = [0, 1.99, 2, 9.99, 10, 60, 3600];
    const periodOf = (s: number) =>
      ((SAMPLE_SCHEDULE.find((p) => s * 1000 < p.untilMs) ?? SAMPLE_SCHEDULE.at(-1)) as SamplePhase).everyMs / 1000;
    expect(python(sandbox, 'print(json.dumps([L.sample_period(s) for s in spec]))', elapsed)).toEqual(
      elapsed.map(periodOf),
    );
  });

  it('a mixed TypeScript/Python queue in auto mode: each language’s first run of an unknown command runs alone, a tight budget keeps one at a time in ticket order, a roomy one lets them overlap', async () => {
    sandbox = new TestSandbox();
    const budget = (memoryBudget: string) => ({ slots: 'auto', maxSlots: 4, memoryBudget });
    const project = new GrowProject(sandbox, { size: 60, ms: 300, settings: budget('8G') });
    const { ts, py } = project;
    const env = { SEQ_TEST_KEY: `auto-mixed-${sandbox.marker}` };
    // Nothing known yet: each language's first run of its command runs alone and is measured (the second
    // of each may overlap once the first of both are known).
    const learning = await project.round([ts, py, ts, py], env);
    expect(learning.order).toHaveLength(4);
    expect(learning.alone.slice(0, 2)).toEqual([true, true]);
    const historyDir = join(sandbox.stateDir, keyDirName(env.SEQ_TEST_KEY), 'history');
    const histories = readdirSync(historyDir).map((f) => JSON.parse(readFileSync(join(historyDir, f), 'utf8')));
    expect(histories.map((h) => h.runs.length).sort()).toEqual([2, 2]);
    expect(histories.map((h) => h.what.runner ?? 'ts').sort()).toEqual(['python', 'ts']);
    // Known, and a budget that fits one: never two at once, in ticket order.
    project.set({ settings: budget('300M') });
    const tight = await project.round([ts, py, ts, py], env);
    expect(tight.max).toBe(1);
    expect(tight.order).toEqual([...tight.order].sort());
    // Known, and room for all: they overlap across languages.
    project.set({ settings: budget('8G'), ms: 2000 });
    expect((await project.round([ts, py, ts, py], env)).max).toBeGreaterThanOrEqual(2);
  });

  it('four runs of one new command queued at once, TypeScript and Python mixed: the first runs alone, the others learn its peak while waiting and run two at a time', async () => {
    sandbox = new TestSandbox();
    // ~200 MiB touched: a tree of ~235 MiB Pss, predicted ~410 MiB from one run (+75 %). A budget of 1100M
    // (reserve 128 MiB) has room for two such runs (2 × 410 + 128 ≤ 1100) and not three (3 × 410 + 128 >
    // 1100), with the tree anywhere from 190 to 275 MiB (−19 % to +17 %).
    const project = new GrowProject(sandbox, {
      size: 200,
      ms: 1500,
      settings: { slots: 'auto', maxSlots: 4, memoryBudget: '1100M' },
    });
    // The Python contender takes the fingerprint `seq-test run` gives the command: one history for both.
    const { ts, pyAsRun: py } = project;
    // Each order on its own key (a new command each time): the first learner is TypeScript, then Python.
    for (const [name, starters] of [
      ['ts-first', [ts, py, ts, py]],
      ['py-first', [py, ts, py, ts]],
    ] as const) {
      const env = { SEQ_TEST_KEY: `auto-learn-${name}-${sandbox.marker}` };
      const { max, order, alone } = await project.round(starters, env);
      // (Runs admitted a moment apart may log their start in either order: only the first's is certain.)
      expect(order[0]).toBe([...order].sort()[0]);
      // The first ran alone; the three behind it learned its peak as they waited (each rewriting its
      // ticket's prediction, read by the other language): two at a time fit the budget, never three.
      expect(alone[0]).toBe(true);
      expect(max).toBe(2);
      const historyDir = join(sandbox.stateDir, keyDirName(env.SEQ_TEST_KEY), 'history');
      const files = readdirSync(historyDir);
      expect(files).toEqual([`${fingerprintOf({ argv: project.command, cwd: realpathSync(project.cwd) })}.json`]);
      expect(JSON.parse(readFileSync(join(historyDir, files[0] as string), 'utf8')).runs).toHaveLength(4);
    }
  });

  it('a TypeScript holder whose command ended (its leftover lingering) is charged no growth by a Python head', async () => {
    sandbox = new TestSandbox();
    const { cwd } = new GrowProject(sandbox, {
      size: 10,
      ms: 0,
      settings: { slots: 'auto', maxSlots: 4, memoryBudget: '500M' },
    });
    writeFileSync(join(cwd, 'leave.cjs'), LEAVE_BEHIND);
    const env = { SEQ_TEST_KEY: `auto-linger-${sandbox.marker}` };
    expect((await sandbox.run(['run', '--quiet', '--', 'true'], { env, cwd })).code).toBe(0); // the dirs
    // Both known to peak at 200 MiB (predicted 230 MiB): with 500 MiB and the 128 MiB reserve, the Python run
    // fits beside the TypeScript one only once that one's tree is small, after its command.
    const queueDir = join(sandbox.stateDir, keyDirName(env.SEQ_TEST_KEY));
    const real = realpathSync(cwd);
    const pyArgs = [CONTENDER, '--quiet', '--', 'node', 'grow.cjs'];
    seedPeak(queueDir, { argv: ['node', 'leave.cjs'], cwd: real }, 200 * MiB);
    seedPeak(queueDir, { argv: pyArgs, cwd: real, runner: 'python' }, 200 * MiB);
    const first = sandbox.start(['run', '--quiet', '--linger', '120', '--', 'node', 'leave.cjs'], { env, cwd });
    let second: Started | undefined;
    try {
      await waitFor(() => existsSync(join(cwd, 'stamps.log')), 30_000, 'the TypeScript run to start its command');
      second = sandbox.start(pyArgs, { file: PYTHON, env, cwd });
      let done = false;
      void second.finished.then(() => {
        done = true;
      });
      // A reader that charged the lingering holder its full growth would wait for the gate: this bound fails it.
      await waitFor(() => done, 60_000, 'the Python run to be admitted and finish while the TypeScript one lingers');
      const result = await second.finished;
      expect(result.code, result.stderr).toBe(0);
      // Admitted while the TypeScript run still held (its leftover gated), after its command had ended.
      expect(isAlive(first.child.pid as number)).toBe(true);
      const { max, order } = overlaps(join(cwd, 'stamps.log'));
      expect(max).toBe(1);
      expect(order).toHaveLength(2);
    } finally {
      writeFileSync(join(cwd, 'release'), '');
      await Promise.all([first.finished, second?.finished]);
    }
    expect((await first.finished).code).toBe(0);
  });
});
