#!/usr/bin/env node
// The headline where memory runs out (issue 17): four runs of a heavy suite started at once inside a memory
// cgroup whose limit is too small for four plain runs, for Vitest, Jest and pytest, in each mode:
//   plain   the runner as a developer types it (vitest run; jest; python3 -m pytest -n 4)
//   slots1  `seq-test run --slots 1 -- <plain command>`
//   auto    `seq-test run --slots auto --max-slots 4 -- <plain command>` (after one learning run)
//   slotsn  `seq-test run --slots 4 -- <plain command>` (only with --modes/--unlimited-modes: all at once, no
//           admission and no sampling: what auto costs beyond seq-test's wrapping, where memory is ample)
//   flock   `flock LOCKFILE <plain command>`
//   sem     `sem --fg -j 4 --memfree SIZE --id ID <plain command>` (GNU parallel; SIZE = one plain run's peak)
// All modes run the same command, so every row compares like with like (pytest -n 4 everywhere).
//
//   node bench/memory-admission.mjs [--reps 3] [--n 4] [--flavours vitest,jest,pytest]
//                                   [--modes plain,slots1,auto,flock,sem] [--limit-factor 3]
//                                   [--unlimited-modes plain,auto] [--linger SEC] [--work-bounded]
//                                   [--write] [--quick] [--trace FILE]
//
// Needs root and a writable cgroup v1 memory hierarchy (/sys/fs/cgroup/memory): it creates one uniquely
// named child of its own memory cgroup, and removes it at the end (or on Ctrl-C). Only the runs are put in
// it (each through `sh -c 'echo $$ > cgroup.procs; exec …'`), never this script, so an OOM kill hits a run.
//
// Per flavour: one unlimited plain run measures the group's peak P; the limit is `--limit-factor` × P
// (default 3: four plain runs at once need about 4 × P and do not all survive, which the plain rows show;
// two runs with auto mode's margin and reserve fit, so auto can run two at a time).
// One `seq-test run --slots auto` run then seeds the memory history (auto mode learns from it; the history
// keeps learning across repetitions, as it would for a user). Then `--reps` repetitions of every mode, in an
// order rotated by one each repetition, inside the limit; and the same without a limit for
// `--unlimited-modes` (the "within 10 % of plain where memory is ample" target).
//
// --linger SEC is passed to the seq-test modes (default: not passed, so the CLI's default of 3 s applies). Every
// run of these fixtures leaves a `sleep` behind on purpose, so with the default each seq-test run lasts 3 s
// after its command before it ends its leftovers, where plain leaves them running; `--linger 0` measures
// what admission itself costs.
// --work-bounded: the fixture's tests make a fixed number of passes over their memory (HEAVY_PASSES, what one
// test does alone in its usual 1.5 s, measured here first) instead of computing for a fixed time. Bounded by
// time, four runs at once take about as long as one whatever the cores, so no admission policy that runs
// fewer at once can keep up; bounded by work, runs sharing the cores slow each other down, as CPU-bound test
// suites do.
// Per batch: the CPU time of each run's own process (seq-test's, in the seq-test modes: what it adds),
// runs completed (exit 0) / failed, OOM kills in the group (memory.oom_control), wall time (first
// start to last exit), the group's peak memory (memory.max_usage_in_bytes, reset before each batch), and
// processes left behind (found by an environment marker, then ended by pid). Reported: medians with
// [min–max] over repetitions, and wall-time ratios to plain (limited: against plain *unlimited*, measured in
// the same session) with an interval from the extremes; a verdict is "inconclusive" where the interval
// covers the target. Load averages at start and end are part of the result: this machine is often shared.
// --trace FILE (to find why a run was lost): the seq-test modes run with --verbose instead of --quiet (each
// says why it was admitted), and every batch appends one JSON line to FILE: each run's whole stderr, and
// every 50 ms the group's usage, each run's summed RSS (by the run's process tree in the group) and the
// tickets of its key (holding or not, command ended, predicted peak).
// After each limit's repetitions, for auto's key: each run in its history against the prediction the runs
// before it gave (the highest peak / prediction: over 100 % would mean a run went past what it was charged).
// --write saves bench/results/memory-admission.json. Every batch is also appended, as it ends, to
// bench/results/raw/memory-admission.jsonl (partial results survive an interrupted session). Everything it
// starts is ended by pid.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  BENCH_DIR,
  CLI,
  leftoverTracker,
  machine,
  markdownTable,
  RAW_DIR,
  ROOT,
  stats,
  waitForBuild,
  writeResults,
} from './lib/harness.mjs';

const MIB = 1024 ** 2;
const FIXTURES = join(BENCH_DIR, 'fixtures');
const PYTHON = '/usr/bin/python3';
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const ALL_FLAVOURS = ['vitest', 'jest', 'pytest'];
const ALL_MODES = ['plain', 'slots1', 'auto', 'flock', 'sem'];
// Not in the default list: `slotsn` is a control for "without a limit", not a way to protect memory.
const KNOWN_MODES = [...ALL_MODES, 'slotsn'];
const BATCH_TIMEOUT_MS = 600_000;
const RAW = join(RAW_DIR, 'memory-admission.jsonl');

const args = parseOptions(process.argv.slice(2), {
  reps: '3',
  n: '4',
  flavours: ALL_FLAVOURS.join(','),
  modes: ALL_MODES.join(','),
  'limit-factor': '3',
  'unlimited-modes': 'plain,auto',
  linger: '',
  'work-bounded': false,
  write: false,
  quick: false,
  runs: '',
  trace: '',
});
// run-all.mjs passes --quick and --runs N through: one repetition of Vitest only, or N repetitions.
if (args.quick) Object.assign(args, { reps: '1', flavours: 'vitest', modes: 'plain,slots1,auto' });
if (args.runs) args.reps = args.runs;

function parseOptions(argv, defaults) {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]?.replace(/^--/, '') ?? '';
    if (!argv[i]?.startsWith('--') || !(name in defaults))
      fail(`unknown option "${argv[i]}" (see the header of this file)`);
    if (typeof defaults[name] === 'boolean') options[name] = true;
    else if (i + 1 < argv.length) options[name] = argv[++i];
    else fail(`${argv[i]} expects a value`);
  }
  return options;
}
const list = (value, allowed, flag) => {
  const items = String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((i) => !allowed.includes(i));
  if (bad.length > 0) fail(`${flag} expects a comma-separated list of ${allowed.join(', ')}, got "${value}"`);
  return items;
};
const REPS = Number(args.reps);
const N = Number(args.n);
const FACTOR = Number(args['limit-factor']);
if (!(REPS >= 1 && N >= 1 && FACTOR > 0)) fail('--reps and --n expect whole numbers ≥ 1, --limit-factor a number > 0');
const FLAVOURS = list(args.flavours, ALL_FLAVOURS, '--flavours');
const MODES = list(args.modes, KNOWN_MODES, '--modes');
const UNLIMITED_MODES = list(args['unlimited-modes'], KNOWN_MODES, '--unlimited-modes');
if (args.linger !== '' && !(Number(args.linger) >= 0)) fail('--linger expects a number of seconds ≥ 0');
const SEQ_TEST_EXTRA = args.linger === '' ? [] : ['--linger', String(Number(args.linger))];
const TRACE = args.trace;
const QUIET = TRACE ? '--verbose' : '--quiet';

function fail(message) {
  console.error(`memory-admission: ${message}`);
  process.exit(2);
}

// --- the cgroup -------------------------------------------------------------------------------------------

function ownMemoryCgroup() {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers?.split(',').includes('memory')) return path;
  }
  return undefined;
}

const parentPath = ownMemoryCgroup();
if (process.getuid?.() !== 0 || parentPath === undefined || !existsSync('/sys/fs/cgroup/memory')) {
  // Not a failure of seq-test: run-all.mjs goes on with the other benchmarks.
  console.log('memory-admission: skipped: needs root and a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory');
  process.exit(0);
}
const GROUP = join(
  '/sys/fs/cgroup/memory',
  parentPath,
  `seq-test-bench-${process.pid}-${randomBytes(4).toString('hex')}`,
);
const cg = (file) => join(GROUP, file);
const cgRead = (file) => readFileSync(cg(file), 'utf8');
const cgWrite = (file, value) => writeFileSync(cg(file), String(value));
mkdirSync(GROUP);
const hasMemsw = existsSync(cg('memory.memsw.limit_in_bytes'));

function setLimit(bytes) {
  // memsw (memory + swap) must stay ≥ the memory limit: raise/lower them in the order the kernel accepts.
  const value = bytes ?? -1;
  if (hasMemsw) {
    if (value === -1) {
      cgWrite('memory.memsw.limit_in_bytes', -1);
      cgWrite('memory.limit_in_bytes', -1);
    } else {
      cgWrite('memory.limit_in_bytes', -1);
      cgWrite('memory.memsw.limit_in_bytes', -1);
      cgWrite('memory.limit_in_bytes', value);
      cgWrite('memory.memsw.limit_in_bytes', value); // no swapping out of the small machine
    }
  } else cgWrite('memory.limit_in_bytes', value);
}

const oomKills = () => Number(/^oom_kill (\d+)$/m.exec(cgRead('memory.oom_control'))?.[1] ?? 0);

function removeGroup() {
  if (!existsSync(GROUP)) return;
  const left = cgRead('cgroup.procs').trim().split('\n').filter(Boolean).map(Number);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(GROUP);
      return;
    } catch {
      spawnSync('sleep', ['0.05']);
    }
  }
  console.error(`memory-admission: could not remove ${GROUP}; remove it with rmdir once its processes are gone`);
}

// --- runs -------------------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(os.tmpdir(), 'seq-test-memory-admission-'));
const stateDir = join(tmp, 'state');
const marker = leftoverTracker('SEQ_TEST_MEMORY_BENCH');
const running = new Set();

function cleanup() {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  for (const pid of marker.marked()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  removeGroup();
  rmSync(tmp, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

function flavourCommand(name) {
  if (name === 'vitest') {
    if (!existsSync(VITEST)) return { skip: 'vitest is not installed at the repository root (npm ci)' };
    return { cwd: join(FIXTURES, 'heavy-vitest'), argv: [process.execPath, VITEST, 'run'], shown: 'vitest run' };
  }
  if (name === 'jest') {
    const dir = join(FIXTURES, 'heavy-jest');
    const jestBin = join(dir, 'node_modules', 'jest', 'bin', 'jest.js');
    if (!existsSync(jestBin)) {
      spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
      if (!existsSync(jestBin)) return { skip: 'npm ci in bench/fixtures/heavy-jest failed' };
    }
    return { cwd: dir, argv: [process.execPath, jestBin], shown: 'jest' };
  }
  if (spawnSync(PYTHON, ['-c', 'import pytest, xdist'], { stdio: 'ignore' }).status !== 0) {
    return { skip: `${PYTHON} lacks pytest or pytest-xdist` };
  }
  const dir = join(tmp, 'heavy-pytest');
  cpSync(join(FIXTURES, 'heavy-pytest'), dir, { recursive: true });
  return {
    cwd: dir,
    argv: [PYTHON, '-m', 'pytest', '-q', '-n', '4', '-p', 'no:cacheprovider'],
    shown: 'python3 -m pytest -n 4',
  };
}

function modeArgv(mode, flavour, plain, memfreeBytes) {
  const seqTest = (...slots) => [process.execPath, CLI, 'run', QUIET, ...SEQ_TEST_EXTRA, ...slots, '--', ...plain.argv];
  switch (mode) {
    case 'plain':
      return plain.argv;
    case 'slots1':
      return seqTest('--slots', '1');
    case 'slotsn':
      return seqTest('--slots', String(N));
    case 'auto':
      return seqTest('--slots', 'auto', '--max-slots', String(N));
    case 'flock':
      return ['flock', join(tmp, `${flavour}.flock`), ...plain.argv];
    case 'sem':
      return [
        'sem',
        '--will-cite',
        '--fg',
        '-j',
        String(N),
        '--memfree',
        `${Math.ceil(memfreeBytes / MIB)}M`,
        '--id',
        `seq-test-memory-${process.pid}-${flavour}`,
        ...plain.argv,
      ];
  }
}

/**
 * How many passes one test of the fixture makes alone in its usual HEAVY_HOLD_MS (1500 ms) on this machine:
 * the work a --work-bounded test then does, wherever it runs. Measured with the fixture's own function.
 */
function calibratePasses(flavour, cwd) {
  const env = { ...process.env, ...marker.env, HEAVY_CHILD_S: '0' };
  delete env.HEAVY_PASSES; // measured bounded by time
  const heavyModule = join(cwd, flavour === 'jest' ? 'heavy.js' : 'heavy.mjs');
  const measured =
    flavour === 'pytest'
      ? spawnSync(PYTHON, ['-c', 'import heavy; print(heavy.heavy(1)[1])'], { cwd, env, encoding: 'utf8' })
      : spawnSync(
          process.execPath,
          ['-e', `import(${JSON.stringify(heavyModule)}).then((m) => m.heavy(1)).then((r) => console.log(r.passes))`],
          { cwd, env, encoding: 'utf8' },
        );
  const passes = Number(measured.stdout.trim());
  if (!(passes >= 1)) throw new Error(`${flavour}: calibrating the fixture failed: ${measured.stderr.trim()}`);
  return passes;
}

/** Starts one run inside the group; resolves with its exit. */
function startInGroup(argv, cwd, key) {
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', GROUP, ...argv], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      ...marker.env,
      SEQ_TEST_STATE_DIR: stateDir,
      SEQ_TEST_KEY: key,
      HOME: process.env.HOME ?? tmp,
      PARALLEL_HOME: join(tmp, 'parallel'),
    },
  });
  running.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = TRACE ? stderr + d : (stderr + d).slice(-4000);
  });
  // The CPU time of the run's own process (sh execs it: seq-test's Node process in the seq-test modes),
  // last seen alive: what seq-test itself adds, sampling and admission included.
  let cpuS = 0;
  const cpuTimer = setInterval(() => {
    cpuS = cpuSecondsOf(child.pid) ?? cpuS;
  }, 200);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(cpuTimer);
      running.delete(child);
      resolve({ pid: child.pid, code, signal, stderr, cpuS });
    });
  });
}

const TICKS_PER_S = 100; // USER_HZ, 100 on Linux
function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** N runs of `argv` at once in the group; the batch's figures. */
async function batch(argv, cwd, key, n = N) {
  cgWrite('memory.max_usage_in_bytes', 0);
  const kills = oomKills();
  const began = performance.now();
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), BATCH_TIMEOUT_MS);
  });
  const children = new Set(running);
  const runs = Array.from({ length: n }, () => startInGroup(argv, cwd, key));
  const tracer = TRACE
    ? traceBatch(
        [...running].filter((c) => !children.has(c)).map((c) => c.pid),
        key,
      )
    : undefined;
  const outcome = await Promise.race([Promise.all(runs), timeout]);
  clearTimeout(timer);
  tracer?.stop();
  if (outcome === 'timeout') for (const child of running) child.kill('SIGKILL');
  const results = await Promise.all(runs);
  const wallMs = performance.now() - began;
  const left = marker.marked().length;
  marker.endMarked(key);
  if (tracer) {
    const runsOut = results.map((r) => ({ pid: r.pid, code: r.code, signal: r.signal, stderr: r.stderr }));
    appendFileSync(
      TRACE,
      `${JSON.stringify({ key, oomKills: oomKills() - kills, runs: runsOut, samples: tracer.samples })}\n`,
    );
  }
  return {
    completed: results.filter((r) => r.code === 0).length,
    failed: results.filter((r) => r.code !== 0).length,
    oomKills: oomKills() - kills,
    wallMs,
    peakBytes: Number(cgRead('memory.max_usage_in_bytes')),
    leftBehind: left,
    ownCpuS: results.map((r) => r.cpuS),
    errors: results
      .filter((r) => r.code !== 0)
      .map((r) => `${r.code ?? r.signal}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`),
  };
}

/** --trace: every 50 ms, the group's usage, each run's summed RSS (by process tree) and its key's tickets. */
function traceBatch(roots, key) {
  const began = performance.now();
  const samples = [];
  const page = 4096;
  const sample = () => {
    const parent = new Map();
    const rss = new Map();
    for (const pid of cgRead('cgroup.procs').trim().split('\n').filter(Boolean).map(Number)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        rss.set(pid, Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * page);
      } catch {}
    }
    const rootOf = (pid) => {
      for (let p = pid, hops = 0; p && hops < 64; p = parent.get(p), hops++) if (roots.includes(p)) return p;
      return undefined;
    };
    const perRun = Object.fromEntries(roots.map((r) => [r, 0]));
    for (const [pid, bytes] of rss) {
      const root = rootOf(pid);
      if (root !== undefined) perRun[root] += bytes;
    }
    const dir = join(stateDir, readdirSafe(stateDir).find((d) => readKey(join(stateDir, d)) === key) ?? '-', 'tickets');
    const tickets = [];
    for (const name of readdirSafe(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const t = JSON.parse(readFileSync(join(dir, name), 'utf8'));
        tickets.push({
          pid: t.pid,
          holding: t.startedAt !== null,
          ended: t.admission?.endedAt != null,
          predictedMiB: t.admission?.predictedBytes ? Math.round(t.admission.predictedBytes / MIB) : null,
        });
      } catch {}
    }
    samples.push({
      ms: Math.round(performance.now() - began),
      usageMiB: Math.round(Number(cgRead('memory.usage_in_bytes')) / MIB),
      rssMiB: Object.values(perRun).map((b) => Math.round(b / MIB)),
      tickets,
    });
  };
  const timer = setInterval(sample, 50);
  return {
    samples,
    stop: () => clearInterval(timer),
  };
}

/** The core's prediction rule (predictPeak), loaded once the build is there. */
let predictPeak;
/**
 * How close auto mode's predictions came: each recorded run of the key's history (the last HISTORY_KEEP, in
 * order) against the prediction the runs before it gave (skipped until one is known). Peaks only: the
 * margin's test is that no run goes past its prediction.
 */
function predictionCheck(key) {
  const dir = join(stateDir, readdirSafe(stateDir).find((d) => readKey(join(stateDir, d)) === key) ?? '', 'history');
  const rows = [];
  for (const file of readdirSafe(dir).filter((f) => f.endsWith('.json'))) {
    let runs = [];
    try {
      runs = JSON.parse(readFileSync(join(dir, file), 'utf8')).runs;
    } catch {}
    for (let i = 1; i < runs.length; i++) {
      const predicted = predictPeak(runs.slice(0, i));
      if (predicted) rows.push({ peakBytes: runs[i].peakBytes, predictedBytes: predicted });
    }
  }
  return rows;
}

function historyPeak(key) {
  // What auto mode learned: the Pss peaks in the key's history, for the Pss-against-RSS comparison.
  const dir = join(stateDir, readdirSafe(stateDir).find((d) => readKey(join(stateDir, d)) === key) ?? '', 'history');
  const peaks = [];
  for (const file of readdirSafe(dir)) {
    try {
      peaks.push(...JSON.parse(readFileSync(join(dir, file), 'utf8')).runs.map((r) => r.peakBytes));
    } catch {}
  }
  return peaks;
}
function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
function readKey(dir) {
  try {
    return readFileSync(join(dir, 'key'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

// --- the session ------------------------------------------------------------------------------------------

const mib = (b) => `${Math.round(b / MIB)}`;
const s = (ms) => (ms / 1000).toFixed(1);
const spread = (values, format) => {
  const st = stats(values);
  return `${format(st.median)} [${format(st.min)}–${format(st.max)}]`;
};

async function main() {
  await waitForBuild();
  ({ predictPeak } = await import(join(ROOT, 'packages', 'core', 'dist', 'internal.js')));
  mkdirSync(RAW_DIR, { recursive: true });
  appendFileSync(
    RAW,
    `${JSON.stringify({ session: new Date().toISOString(), machine: machine(), reps: REPS, n: N, factor: FACTOR })}\n`,
  );
  const results = {
    flavours: {},
    group: GROUP,
    reps: REPS,
    n: N,
    limitFactor: FACTOR,
    linger: args.linger === '' ? 'default (3 s)' : Number(args.linger),
    fixture: args['work-bounded'] ? 'work-bounded' : 'time-bounded',
  };
  const loadStart = os.loadavg();
  console.log(`memory-admission: cgroup ${GROUP}; load ${loadStart.map((l) => l.toFixed(2)).join(' ')}`);
  for (const flavour of FLAVOURS) {
    const plain = flavourCommand(flavour);
    if (plain.skip) {
      console.log(`${flavour}: skipped (${plain.skip})`);
      continue;
    }
    // Every run started below inherits the fixture's work from this process's environment.
    const passesPerTest = args['work-bounded'] ? calibratePasses(flavour, plain.cwd) : undefined;
    if (passesPerTest) {
      process.env.HEAVY_PASSES = String(passesPerTest);
      console.log(`${flavour}: work-bounded, ${passesPerTest} passes per test (1.5 s alone, measured now)`);
    } else delete process.env.HEAVY_PASSES;
    const key = (mode, limited) => `${flavour}-${mode}-${limited ? 'limited' : 'unlimited'}-${process.pid}`;
    // One plain run alone, no limit: the group's peak for one run, which sets the limit and sem's --memfree.
    setLimit(undefined);
    const single = await batch(plain.argv, plain.cwd, `${flavour}-probe`, 1);
    if (single.completed !== 1) throw new Error(`${flavour}: a single plain run failed: ${single.errors.join('; ')}`);
    const limit = Math.round((single.peakBytes * FACTOR) / MIB) * MIB;
    // Pss against RSS: one `seq-test run --json` (the runner's figure is summed RSS; the history holds Pss).
    const json = spawnSync(
      'sh',
      [
        '-c',
        'echo $$ > "$0/cgroup.procs" && exec "$@"',
        GROUP,
        process.execPath,
        CLI,
        'run',
        '--json',
        '--quiet',
        '--slots',
        'auto',
        '--',
        ...plain.argv,
      ],
      {
        cwd: plain.cwd,
        encoding: 'utf8',
        env: { ...process.env, ...marker.env, SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: `${flavour}-measure` },
      },
    );
    marker.endMarked(`${flavour}-measure`);
    let summedRss = Number.NaN;
    try {
      summedRss = JSON.parse(json.stdout).peakRssBytes;
    } catch {}
    const pss = historyPeak(`${flavour}-measure`)[0] ?? Number.NaN;
    console.log(
      `${flavour}: one plain run peaks at ${mib(single.peakBytes)} MiB in the group (cgroup usage); limit ${mib(limit)} MiB; ` +
        `one seq-test run: Pss peak ${mib(pss)} MiB, summed RSS peak ${mib(summedRss)} MiB`,
    );
    const flavourResult = {
      command: plain.shown,
      passesPerTest,
      singlePeakBytes: single.peakBytes,
      limitBytes: limit,
      pssPeakBytes: pss,
      summedRssPeakBytes: summedRss,
      limited: {},
      unlimited: {},
    };
    results.flavours[flavour] = flavourResult;
    for (const [limited, modes] of [
      [true, MODES],
      [false, UNLIMITED_MODES],
    ]) {
      setLimit(limited ? limit : undefined);
      if (modes.includes('auto')) {
        // The learning run: auto mode knows nothing about the command yet (it would run them one at a time).
        const learn = await batch(
          modeArgv('auto', flavour, plain, single.peakBytes),
          plain.cwd,
          key('auto', limited),
          1,
        );
        console.log(
          `${flavour} ${limited ? 'limited' : 'unlimited'}: learning run ${learn.completed ? 'done' : 'FAILED'} (${s(learn.wallMs)} s)`,
        );
      }
      const table = limited ? flavourResult.limited : flavourResult.unlimited;
      for (let rep = 0; rep < REPS; rep++) {
        const order = [...modes.slice(rep % modes.length), ...modes.slice(0, rep % modes.length)];
        for (const mode of order) {
          const b = await batch(modeArgv(mode, flavour, plain, single.peakBytes), plain.cwd, key(mode, limited));
          table[mode] = [...(table[mode] ?? []), { rep, ...b, load1: os.loadavg()[0] }];
          appendFileSync(
            RAW,
            `${JSON.stringify({ flavour, limited, limitBytes: limit, mode, rep, ...b, loadavg: os.loadavg() })}\n`,
          );
          console.log(
            `${flavour} ${limited ? `limit ${mib(limit)} MiB` : 'no limit'} rep ${rep + 1} ${mode}: ${b.completed}/${N} completed, ` +
              `${b.oomKills} OOM kills, ${s(b.wallMs)} s, peak ${mib(b.peakBytes)} MiB, ${b.leftBehind} left behind, ` +
              `own CPU per run ${b.ownCpuS.map((c) => c.toFixed(2)).join(' ')} s` +
              (b.errors.length ? ` (${b.errors[0]})` : ''),
          );
        }
      }
      if (modes.includes('auto')) {
        const checked = predictionCheck(key('auto', limited));
        const worst = checked.reduce((w, r) => Math.max(w, r.peakBytes / r.predictedBytes), 0);
        const peaks = checked.map((r) => r.peakBytes);
        flavourResult[limited ? 'limitedPredictions' : 'unlimitedPredictions'] = checked;
        console.log(
          `${flavour} ${limited ? 'limited' : 'unlimited'}: auto's history, ${checked.length} runs after the first: Pss peaks ` +
            `${mib(Math.min(...peaks))}-${mib(Math.max(...peaks))} MiB, the highest at ${(worst * 100).toFixed(1)} % of its prediction ` +
            `(over 100 %: a run went past what admission charged it)`,
        );
      }
    }
  }
  setLimit(undefined);
  results.loadavgStart = loadStart;
  results.loadavgEnd = os.loadavg();
  report(results);
  if (args.write) console.log(`written: ${writeResults('memory-admission', results)}`);
}

function report(results) {
  for (const [flavour, f] of Object.entries(results.flavours)) {
    console.log(
      `\n### ${flavour} (\`${f.command}\`), ${N} runs at once, limit ${mib(f.limitBytes)} MiB (${FACTOR} × one run's ${mib(f.singlePeakBytes)} MiB), ${f.passesPerTest ? `work-bounded fixture (${f.passesPerTest} passes per test)` : 'time-bounded fixture'}\n`,
    );
    const plainFree = (f.unlimited.plain ?? []).map((b) => b.wallMs);
    const rows = [];
    for (const [limited, table] of [
      [true, f.limited],
      [false, f.unlimited],
    ]) {
      for (const [mode, batches] of Object.entries(table)) {
        const walls = batches.map((b) => b.wallMs);
        const ratio = plainFree.length
          ? `${(stats(walls).median / stats(plainFree).median).toFixed(2)}× [${(Math.min(...walls) / Math.max(...plainFree)).toFixed(2)}–${(Math.max(...walls) / Math.min(...plainFree)).toFixed(2)}]`
          : '–';
        rows.push([
          limited ? 'limit' : 'none',
          mode,
          `${batches.reduce((a, b) => a + b.completed, 0)}/${batches.length * N}`,
          String(batches.reduce((a, b) => a + b.oomKills, 0)),
          spread(walls, s),
          ratio,
          spread(
            batches.map((b) => b.peakBytes),
            mib,
          ),
          String(batches.reduce((a, b) => a + b.leftBehind, 0)),
          spread(
            batches.flatMap((b) => b.ownCpuS),
            (c) => c.toFixed(2),
          ),
        ]);
      }
    }
    console.log(
      markdownTable(
        [
          'limit',
          'mode',
          'completed',
          'OOM kills',
          'wall s, median [min–max]',
          'wall / plain without limit',
          'group peak MiB',
          'left behind',
          "CPU s of the run's own process",
        ],
        rows,
      ),
    );
    const auto = f.limited.auto ?? [];
    const autoFree = (f.unlimited.auto ?? []).map((b) => b.wallMs);
    if (auto.length) {
      const lost = auto.reduce((a, b) => a + b.failed, 0);
      // A group at its limit has had the kernel reclaim or kill for it: reaching it is not "within".
      const within = auto.every((b) => b.peakBytes < f.limitBytes && b.oomKills === 0);
      const walls = auto.map((b) => b.wallMs);
      const lo = Math.min(...walls) / Math.max(...plainFree);
      const hi = Math.max(...walls) / Math.min(...plainFree);
      console.log(
        `\ntargets: auto under the limit: ${lost} runs lost (target 0), peak below the limit in every repetition: ${within ? 'yes' : 'no'}` +
          (plainFree.length
            ? `; wall ≤ 1.2 × plain without limit: ${hi <= 1.2 ? 'met' : lo > 1.2 ? 'missed' : 'inconclusive'} [${lo.toFixed(2)}–${hi.toFixed(2)}]`
            : ''),
      );
    }
    if (autoFree.length && plainFree.length) {
      const lo = Math.min(...autoFree) / Math.max(...plainFree);
      const hi = Math.max(...autoFree) / Math.min(...plainFree);
      console.log(
        `without a limit, auto within 10 % of plain: ${hi <= 1.1 ? 'met' : lo > 1.1 ? 'missed' : 'inconclusive'} [${lo.toFixed(2)}–${hi.toFixed(2)}]`,
      );
    }
    // Paired: each mode against plain of the same repetition (the batches ran one after the other, under
    // the same conditions), which takes out the drift between repetitions that the extremes above include.
    const plainByRep = new Map((f.unlimited.plain ?? []).map((b) => [b.rep, b.wallMs]));
    for (const [mode, batches] of Object.entries(f.unlimited)) {
      if (mode === 'plain' || plainByRep.size === 0) continue;
      const ratios = batches.filter((b) => plainByRep.has(b.rep)).map((b) => b.wallMs / plainByRep.get(b.rep));
      if (ratios.length === 0) continue;
      const st = stats(ratios);
      console.log(
        `without a limit, ${mode} / plain of the same repetition: ${st.median.toFixed(2)}× [${st.min.toFixed(2)}–${st.max.toFixed(2)}] (${ratios.map((r) => r.toFixed(2)).join(' ')})`,
      );
    }
  }
  console.log(
    `\nload average at start ${results.loadavgStart.map((l) => l.toFixed(2)).join(' ')}, at end ${results.loadavgEnd.map((l) => l.toFixed(2)).join(' ')}; ${machine().cpus} CPUs`,
  );
}

main()
  .catch((error) => {
    console.error(`memory-admission: ${error.stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(cleanup);
