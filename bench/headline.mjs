#!/usr/bin/env node
// The headline (docs/DESIGN, "Numbers we hold ourselves to"): N test runs of a heavy suite started at once,
// as a developer or several coding agents would, plain and under seq-test, with flock(1) and GNU sem as peers.
//
//   node bench/headline.mjs [--quick] [--write] [--n 4] [--flavours vitest,jest,pytest]
//                           [--modes plain,seq-test,seq-test-run,flock,sem]
//
// The suites are bench/fixtures/heavy-{vitest,jest,pytest}: four test files, each starting one child process
// (`sleep 120`) that it never stops, then holding 300 MiB of resident memory for 1.5 s while computing over
// it. For each flavour and mode, N copies of the same command start at the same moment:
//   plain         the runner as a developer types it, with its default parallelism (vitest run; jest;
//                 python3 -m pytest -n 4, pytest-xdist's workers)
//   seq-test      the same command with the integration switched on: the Vitest plugin, withSeqTest() for
//                 Jest, the generated conftest.py plugin for pytest (one test file at a time, one run of
//                 the project at a time, leftovers reaped)
//   seq-test-run  `seq-test run -- <plain command>` (the lock and the reaper around the unchanged command)
//   flock         `flock LOCKFILE <plain command>` (util-linux)
//   sem           `sem --will-cite --fg -j 1 --id ID <plain command>` (GNU parallel)
// Every 100 ms it samples the machine's used memory (MemTotal - MemAvailable), the number of processes, and
// the count and memory of the processes that carry this benchmark's environment marker: their summed
// anonymous resident memory (RssAnon + RssShmem: what they cost in RAM, without the shared, file-backed
// pages of node or python that plain RSS would count once per process). Every process a run starts inherits
// the marker, escapees included, so that figure does not move with other users' load; the machine's does.
// Reported per flavour and mode: peak memory above the idle baseline measured just before, peak process
// count, total wall time (first start to last exit), runs that failed, processes left behind afterwards
// (found by the marker, then ended by pid).
//
// Default: modes plain, seq-test, flock and sem for every flavour (add seq-test-run with --modes); about
// 10 minutes on a busy 2-core machine. Each flavour starts with one untimed warm-up run of its plain
// command, so the first measured batch is not the only cold one. --quick: plain and seq-test only, 3 runs at
// once (unless --n says otherwise), about 3-4 minutes. Raw samples and each run's output go to
// bench/results/raw/headline/; --write also saves bench/results/headline.json and headline.svg (drawn with
// vega-lite, rendered to SVG by vega in Node; --replot redraws it from the JSON). All seq-test modes use a
// private SEQ_TEST_STATE_DIR. Everything it starts is ended by pid at the end or on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import {
  BENCH_DIR,
  CLI,
  fmt,
  machine,
  markdownTable,
  RAW_DIR as RAW_BASE,
  ROOT,
  waitForBuild,
} from './lib/harness.mjs';

const MIB = 1024 * 1024;
const SAMPLE_MS = 100;
const MARKER = 'SEQ_TEST_HEADLINE_RUN';
const FIXTURES = join(BENCH_DIR, 'fixtures');
const RAW_DIR = join(RAW_BASE, 'headline');
const ALL_FLAVOURS = ['vitest', 'jest', 'pytest'];
const ALL_MODES = ['plain', 'seq-test', 'seq-test-run', 'flock', 'sem'];
const MODE_LABEL = {
  plain: 'plain',
  'seq-test': 'seq-test (integration)',
  'seq-test-run': 'seq-test run',
  flock: 'flock(1)',
  sem: 'GNU sem',
};
/** A batch that has not finished after this long is ended and its unfinished runs count as failed. */
const BATCH_TIMEOUT_MS = 300_000;

// --- options ----------------------------------------------------------------------------------------------

function parseOptions(argv) {
  const options = { quick: false, write: false, replot: false, n: undefined, flavours: undefined, modes: undefined };
  const list = (value, allowed, flag) => {
    const items = String(value ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = items.filter((item) => !allowed.includes(item));
    if (items.length === 0 || bad.length > 0) {
      usage(`${flag} expects a comma-separated list of ${allowed.join(', ')}, got "${value ?? ''}"`);
    }
    return items;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--write') options.write = true;
    else if (arg === '--replot') options.replot = true;
    else if (arg === '--n') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 16) usage(`--n expects a whole number from 1 to 16, got "${argv[i]}"`);
      options.n = n;
    } else if (arg === '--flavours') options.flavours = list(argv[++i], ALL_FLAVOURS, arg);
    else if (arg === '--modes') options.modes = list(argv[++i], ALL_MODES, arg);
    else if (arg === '--runs' || arg === '--warmup')
      i++; // bench/run-all.mjs passes these to every benchmark
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'options: --quick (plain and seq-test, 3 runs)  --write (save bench/results/headline.{json,svg})\n' +
          '         --n N (concurrent runs, default 4)  --flavours vitest,jest,pytest  --modes ' +
          ALL_MODES.join(',') +
          '\n         --replot (only redraw the SVG from the saved JSON: bench/results/ with --write, else raw/)',
      );
      process.exit(0);
    } else usage(`unknown option "${arg}" (try --help)`);
  }
  return options;
}

function usage(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

const options = parseOptions(process.argv.slice(2));
const N = options.n ?? (options.quick ? 3 : 4);
const flavourNames = options.flavours ?? ALL_FLAVOURS;
/** The modes each flavour runs, in order: plain first, then seq-test, then the peers. */
const modes = options.modes
  ? ALL_MODES.filter((m) => options.modes.includes(m))
  : options.quick
    ? ['plain', 'seq-test']
    : ['plain', 'seq-test', 'flock', 'sem'];

if (process.platform !== 'linux') {
  console.error('bench: headline reads /proc/meminfo and /proc/PID/environ; skipped on', process.platform);
  process.exit(0);
}

// --- the processes we start -------------------------------------------------------------------------------

const markerValue = `${process.pid}-${Date.now()}`;
const markerNeedle = Buffer.from(`${MARKER}=${markerValue}/`);

/** Every process carrying our marker right now (running, not zombies), with the run it belongs to. */
function markedProcesses() {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const info = procInfo(pid);
    if (info?.marked && info.state !== 'Z' && info.state !== 'X') found.push({ pid, run: info.run, comm: info.comm });
  }
  return found;
}

/** Ends every process carrying our marker, by pid. Used after each batch, at exit and on Ctrl-C. */
function endMarked(signal = 'SIGKILL') {
  const ended = [];
  for (const { pid } of markedProcesses()) {
    try {
      process.kill(pid, signal);
      ended.push(pid);
    } catch {}
  }
  return ended;
}

let tmp;
process.on('exit', () => {
  endMarked();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}: ending what this benchmark started`);
    process.exit(130);
  });
}

// --- sampling /proc ---------------------------------------------------------------------------------------

/** pid -> { start, marked, run, comm }: environments are read once per (pid, start time). */
const identities = new Map();

/** Start time, state and (cached) marker of one process; undefined when it is gone. */
function procInfo(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    identities.delete(pid);
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3 (state)
  const state = fields[0];
  const start = fields[19]; // field 22
  let known = identities.get(pid);
  // Read again unless settled: a process caught between fork and exec can show an empty environment, and
  // an exec (a new comm) may change it.
  if (!known || known.start !== start || (!known.marked && (!known.envRead || known.comm !== comm))) {
    let marked = false;
    let envRead = false;
    let run;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`);
      envRead = environ.length > 0;
      const at = environ.indexOf(markerNeedle);
      if (at !== -1) {
        marked = true;
        const end = environ.indexOf(0, at);
        run = environ.subarray(at + markerNeedle.length, end === -1 ? undefined : end).toString();
      }
    } catch {} // unreadable (gone, another user's): not ours
    known = { start, marked, envRead, run, comm };
    identities.set(pid, known);
  }
  return { ...known, comm, state };
}

function memInfo() {
  const text = readFileSync('/proc/meminfo', 'latin1');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { total: kb('MemTotal'), available: kb('MemAvailable') };
}

/** Anonymous resident memory of one process (RssAnon + RssShmem), in bytes; 0 when it is gone. */
function anonymousMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return (kb('RssAnon') + kb('RssShmem')) * 1024;
  } catch {
    return 0;
  }
}

/** One sample: machine memory and process count; count and anonymous memory of our marked processes. */
function sample() {
  const { total, available } = memInfo();
  let procs = 0;
  let ours = 0;
  let oursMem = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    procs++;
    const info = procInfo(Number(name));
    if (info?.marked && info.state !== 'Z') {
      ours++;
      oursMem += anonymousMemory(Number(name));
    }
  }
  return { used: total - available, procs, ours, oursMem };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** The idle baseline: the median of ~1 s of samples, taken when none of our processes is left. */
async function baseline() {
  const samples = [];
  for (let i = 0; i < 10; i++) {
    samples.push(sample());
    await sleep(SAMPLE_MS);
  }
  return { used: median(samples.map((s) => s.used)), procs: median(samples.map((s) => s.procs)) };
}

// --- flavours ---------------------------------------------------------------------------------------------

const PYTHON = '/usr/bin/python3';
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

/** Sets up each flavour's directories and commands; returns { skip } with a reason when it cannot run. */
function prepareFlavour(name) {
  if (name === 'vitest') {
    const dir = join(FIXTURES, 'heavy-vitest');
    if (!existsSync(VITEST)) return { skip: 'vitest is not installed at the repository root (npm ci)' };
    const plain = [process.execPath, VITEST, 'run'];
    const plugin = existsSync(join(ROOT, 'integrations', 'vitest', 'dist', 'index.js'));
    return {
      plain: { cwd: dir, argv: plain, shown: 'vitest run' },
      seqTest: plugin
        ? {
            cwd: dir,
            argv: [...plain, '--config', 'vitest.seq-test.config.mjs'],
            shown: 'vitest run --config vitest.seq-test.config.mjs  (plugins: [seqTest()])',
          }
        : undefined,
    };
  }
  if (name === 'jest') {
    const dir = join(FIXTURES, 'heavy-jest');
    const jestBin = join(dir, 'node_modules', 'jest', 'bin', 'jest.js');
    if (!existsSync(jestBin)) {
      console.log('installing the Jest fixture (npm ci in bench/fixtures/heavy-jest) …');
      const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: dir,
        stdio: 'inherit',
      });
      if (ci.status !== 0 || !existsSync(jestBin)) return { skip: 'npm ci in bench/fixtures/heavy-jest failed' };
    }
    const plain = [process.execPath, jestBin];
    const wrapper = existsSync(join(ROOT, 'integrations', 'jest', 'dist', 'index.js'));
    return {
      plain: { cwd: dir, argv: plain, shown: 'jest' },
      seqTest: wrapper
        ? {
            cwd: dir,
            argv: [...plain, '--config', 'jest.seq-test.config.js'],
            shown: 'jest --config jest.seq-test.config.js  (withSeqTest(config))',
          }
        : undefined,
    };
  }
  // pytest: two copies of the fixture in a temporary directory, one as it is and one where the generated
  // plugin has been written next to conftest.py (what `seq-test init --pytest` does).
  const xdist = spawnSync(PYTHON, ['-c', 'import pytest, xdist'], { stdio: 'ignore' }).status === 0;
  if (!xdist) {
    return { skip: `${PYTHON} lacks pytest or pytest-xdist (apt-get install python3-pytest python3-pytest-xdist)` };
  }
  const plainDir = join(tmp, 'heavy-pytest');
  const seqDir = join(tmp, 'heavy-pytest-seq-test');
  for (const dir of [plainDir, seqDir]) cpSync(join(FIXTURES, 'heavy-pytest'), dir, { recursive: true });
  const argv = [PYTHON, '-m', 'pytest', '-n', '4'];
  return import(join(ROOT, 'packages', 'cli', 'dist', 'index.js'))
    .then(({ writePytestFiles }) => {
      const result = writePytestFiles(seqDir);
      if (!result.complete) throw new Error(result.manual.join('; '));
      return true;
    })
    .catch((error) => {
      console.log(`pytest: the generated plugin could not be written (${error.message}); using seq-test run`);
      return false;
    })
    .then((plugin) => ({
      plain: { cwd: plainDir, argv, shown: 'python3 -m pytest -n 4' },
      seqTest: plugin
        ? { cwd: seqDir, argv, shown: 'python3 -m pytest -n 4  (conftest.py: pytest_plugins = ["seq_test_plugin"])' }
        : undefined,
    }));
}

/** The command one run of `mode` executes, and how the report shows it. */
function commandFor(flavour, mode, setup) {
  const { plain } = setup;
  switch (mode) {
    case 'plain':
      return plain;
    case 'seq-test':
      if (setup.seqTest) return setup.seqTest;
      return {
        ...commandFor(flavour, 'seq-test-run', setup),
        fallback: `the ${flavour} integration was not usable; seq-test run instead`,
      };
    case 'seq-test-run':
      return {
        cwd: plain.cwd,
        argv: [process.execPath, CLI, 'run', '--quiet', '--', ...plain.argv],
        shown: `seq-test run --quiet -- ${plain.shown}`,
      };
    case 'flock':
      return {
        cwd: plain.cwd,
        argv: ['flock', join(tmp, `${flavour}.flock`), ...plain.argv],
        shown: `flock LOCKFILE ${plain.shown}`,
      };
    case 'sem':
      return {
        cwd: plain.cwd,
        argv: ['sem', '--will-cite', '--fg', '-j', '1', '--id', semId(flavour), ...plain.argv],
        shown: `sem --will-cite --fg -j 1 --id ID ${plain.shown}`,
      };
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

const semId = (flavour) => `seq-test-headline-${process.pid}-${flavour}`;

// --- one batch: N runs at once ----------------------------------------------------------------------------

/** The environment every run gets: ours, minus anything that would tie it to an outer seq-test run. */
function runEnv(flavour, mode, index) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^SEQ_TEST_/.test(key) || /^(VITEST|JEST_WORKER_ID|PYTEST_)/.test(key)) delete env[key];
  }
  return {
    ...env,
    [MARKER]: `${markerValue}/${flavour}/${mode}/${index}`,
    SEQ_TEST_STATE_DIR: join(tmp, 'state'), // private: other seq-test users on this machine do not interfere
    HEAVY_MB: '300',
    HEAVY_HOLD_MS: '1500',
    HEAVY_CHILD_S: '120',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/** One untimed run of the plain command with a tiny load: code and caches warm before the first batch. */
function warmUp(flavour, command) {
  const [file, ...args] = command.argv;
  const env = { ...runEnv(flavour, 'warm-up', 0), HEAVY_MB: '1', HEAVY_HOLD_MS: '0', HEAVY_CHILD_S: '1' };
  const log = join(RAW_DIR, `${flavour}-warm-up.log`);
  const fd = openSync(log, 'w');
  const result = spawnSync(file, args, { cwd: command.cwd, env, stdio: ['ignore', fd, fd], timeout: 180_000 });
  closeSync(fd);
  endMarked();
  if (result.status !== 0)
    console.log(`${flavour}: the warm-up run failed (${result.status ?? result.signal}); see ${log}`);
}

async function runBatch(flavour, mode, command) {
  // Idle first: nothing of ours left, then ~1 s of samples.
  endMarked();
  for (let i = 0; i < 50 && markedProcesses().length > 0; i++) await sleep(100);
  await sleep(500);
  const idle = await baseline();
  const loadBefore = os.loadavg();

  const samples = [];
  const begun = performance.now();
  const runs = [];
  for (let i = 0; i < N; i++) {
    const log = join(RAW_DIR, `${flavour}-${mode}-${i + 1}.log`);
    const fd = openSync(log, 'w');
    const [file, ...args] = command.argv;
    const child = spawn(file, args, { cwd: command.cwd, env: runEnv(flavour, mode, i + 1), stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const run = { index: i + 1, pid: child.pid, log, startMs: performance.now() - begun };
    run.done = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        run.endMs = performance.now() - begun;
        run.status = code ?? `${signal}`;
        resolve();
      });
      child.once('error', (error) => {
        run.endMs = performance.now() - begun;
        run.status = `error: ${error.message}`;
        resolve();
      });
    });
    runs.push(run);
  }
  const record = () => samples.push({ t: (performance.now() - begun) / 1000, ...sample() });
  record();
  const timer = setInterval(record, SAMPLE_MS);
  let expiry;
  const timedOut = await Promise.race([
    Promise.all(runs.map((r) => r.done)).then(() => false),
    new Promise((resolve) => {
      expiry = setTimeout(resolve, BATCH_TIMEOUT_MS, true);
    }),
  ]);
  clearTimeout(expiry);
  const wallMs = performance.now() - begun;
  if (timedOut) {
    console.log(`  ${flavour}/${mode}: not done after ${BATCH_TIMEOUT_MS / 1000} s; ending it`);
    endMarked();
    await Promise.all(runs.map((r) => r.done));
  }
  // Leftovers: whatever still carries the marker a moment after the last run has exited.
  await sleep(1000);
  record();
  clearInterval(timer);
  const left = markedProcesses();
  const endedPids = endMarked();

  const peakUsed = Math.max(...samples.map((s) => s.used));
  const peakOursMem = Math.max(...samples.map((s) => s.oursMem));
  return {
    flavour,
    mode,
    command: command.shown,
    fallback: command.fallback,
    n: N,
    idle: { usedBytes: idle.used, processes: idle.procs },
    peakUsedAboveIdleBytes: peakUsed - idle.used,
    peakRunsBytes: peakOursMem,
    peakProcessesAboveIdle: Math.max(...samples.map((s) => s.procs)) - idle.procs,
    peakOursProcesses: Math.max(...samples.map((s) => s.ours)),
    wallMs,
    failed: runs.filter((r) => r.status !== 0).length,
    timedOut,
    leftovers: left.length,
    leftoverCommands: [...new Set(left.map((p) => p.comm))],
    leftoversEnded: endedPids.length,
    loadavgBefore: loadBefore.map((l) => Number(l.toFixed(2))),
    loadavgAfter: os.loadavg().map((l) => Number(l.toFixed(2))),
    runs: runs.map(({ index, pid, startMs, endMs, status, log }) => ({
      index,
      pid,
      startMs: Math.round(startMs),
      endMs: Math.round(endMs),
      status,
      log: relative(ROOT, log),
    })),
    // Column by column: seconds since the start, machine memory used above idle, the runs' anonymous
    // memory, processes on the machine, processes of the runs.
    samples: {
      t: samples.map((s) => Number(s.t.toFixed(2))),
      usedAboveIdleMiB: samples.map((s) => Math.round((s.used - idle.used) / MIB)),
      runsMiB: samples.map((s) => Math.round(s.oursMem / MIB)),
      processes: samples.map((s) => s.procs),
      ours: samples.map((s) => s.ours),
    },
  };
}

// --- report -----------------------------------------------------------------------------------------------

/** Indented JSON, with arrays of numbers kept on one line (the samples would otherwise take 100k lines). */
const NUMBER_ARRAY = /\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s+\]/g;
function toJson(value) {
  const text = JSON.stringify(value, null, 2).replace(
    NUMBER_ARRAY,
    (_, body) => `[${body.split(/,\n\s+/).join(', ')}]`,
  );
  return `${text}\n`;
}

const gib = (bytes) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
const seconds = (ms) => `${fmt(ms / 1000)} s`;

function table(results) {
  const rows = [];
  for (const r of results) {
    const plain = results.find((p) => p.flavour === r.flavour && p.mode === 'plain');
    const vsPlain = (value, base) =>
      plain && r !== plain && base > 0 ? ` (${((100 * value) / base).toFixed(0)}%)` : '';
    rows.push([
      r.flavour,
      `${MODE_LABEL[r.mode]}${r.fallback ? ' ¹' : ''}`,
      `${gib(r.peakUsedAboveIdleBytes)}${vsPlain(r.peakUsedAboveIdleBytes, plain?.peakUsedAboveIdleBytes)}`,
      `${gib(r.peakRunsBytes)}${vsPlain(r.peakRunsBytes, plain?.peakRunsBytes)}`,
      String(r.peakOursProcesses),
      `${seconds(r.wallMs)}${vsPlain(r.wallMs, plain?.wallMs)}`,
      `${r.failed} of ${r.n}`,
      String(r.leftovers),
    ]);
  }
  return markdownTable(
    [
      'suite',
      `${N} runs at once, via`,
      'peak memory used (machine, above idle)',
      "peak memory of the runs' processes (anon RSS)",
      'peak processes of the runs',
      'total wall time',
      'failed runs',
      'processes left behind',
    ],
    rows,
  );
}

/** Memory over time, one row per suite; left the machine's used memory, right the runs' own memory. */
async function chart(results, info, n = N) {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const values = [];
  for (const r of results) {
    const { t, usedAboveIdleMiB, runsMiB } = r.samples;
    const at = (i) => ({ suite: r.flavour, mode: MODE_LABEL[r.mode], t: t[i] });
    for (let i = 0; i < t.length; i++) {
      values.push({ ...at(i), measure: 'machine', GiB: usedAboveIdleMiB[i] / 1024 });
      values.push({ ...at(i), measure: 'runs', GiB: runsMiB[i] / 1024 });
    }
  }
  const modes = ALL_MODES.map((m) => MODE_LABEL[m]).filter((label) => values.some((v) => v.mode === label));
  const palette = {
    plain: '#d62728',
    'seq-test (integration)': '#1f77b4',
    'seq-test run': '#17becf',
    'flock(1)': '#ff7f0e',
    'GNU sem': '#9467bd',
  };
  const suites = ALL_FLAVOURS.filter((f) => results.some((r) => r.flavour === f));
  const panel = (suite, measure, title, showX) => ({
    title: { text: `${suite}: ${title}`, fontSize: 12, anchor: 'start' },
    width: 330,
    height: 130,
    transform: [{ filter: `datum.suite === '${suite}' && datum.measure === '${measure}'` }],
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 't', type: 'quantitative', title: showX ? 'seconds since the runs started' : null },
      y: { field: 'GiB', type: 'quantitative', title: 'GiB' },
      color: {
        field: 'mode',
        type: 'nominal',
        title: null,
        scale: { domain: modes, range: modes.map((m) => palette[m]) },
        legend: { orient: 'top', direction: 'horizontal', labelLimit: 400, symbolStrokeWidth: 2.5, columns: 5 },
      },
      // plain and seq-test stand out; the peers are drawn thinner and dashed
      strokeWidth: {
        condition: { test: `indexof(['plain', '${MODE_LABEL['seq-test']}'], datum.mode) >= 0`, value: 2 },
        value: 1.2,
      },
      strokeDash: {
        condition: { test: `indexof(['plain', '${MODE_LABEL['seq-test']}'], datum.mode) >= 0`, value: [1, 0] },
        value: [4, 2],
      },
      opacity: {
        condition: { test: `indexof(['plain', '${MODE_LABEL['seq-test']}'], datum.mode) >= 0`, value: 1 },
        value: 0.8,
      },
    },
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `${n} concurrent runs of a heavy test suite: memory over time, plain vs seq-test and peers`,
      subtitle: [
        `${info.cpus} CPUs, ${(info.memoryBytes / 1024 ** 3).toFixed(0)} GiB, ${info.date.slice(0, 10)}, load average ` +
          `${info.loadavg[0]} at the start${info.loadavgEnd ? `, ${info.loadavgEnd[0]} at the end` : ''} (shared machine)`,
        'one line per mode, ending when its last run ended; right: only the processes the runs started',
      ],
      fontSize: 14,
      subtitleFontSize: 11,
    },
    data: { values },
    vconcat: suites.map((suite, i) => ({
      resolve: { scale: { x: 'shared', y: 'shared' } },
      hconcat: [
        panel(suite, 'machine', 'machine memory used, above idle', i === suites.length - 1),
        panel(suite, 'runs', "the runs' processes (anon RSS)", i === suites.length - 1),
      ],
    })),
    config: { background: 'white', font: 'sans-serif', axis: { labelFontSize: 10, titleFontSize: 10 } },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

// --- main -------------------------------------------------------------------------------------------------

if (options.replot) {
  const from = options.write ? join(BENCH_DIR, 'results', 'headline.json') : join(RAW_DIR, 'headline.json');
  const saved = JSON.parse(readFileSync(from, 'utf8'));
  const svg = await chart(saved.results, saved.machine, saved.n);
  writeFileSync(join(RAW_DIR, 'headline.svg'), svg);
  if (options.write) writeFileSync(join(BENCH_DIR, 'results', 'headline.svg'), svg);
  console.log(`redrew ${options.write ? 'bench/results/headline.svg' : relative(ROOT, join(RAW_DIR, 'headline.svg'))}`);
  process.exit(0);
}

if (!(await waitForBuild())) usage('build first: npx turbo run build');
mkdirSync(RAW_DIR, { recursive: true });
tmp = mkdtempSync(join(os.tmpdir(), 'seq-test-headline-'));
mkdirSync(join(tmp, 'state'), { mode: 0o700 });

// Our own load-average fields (at the start and at the end of this benchmark), whatever the harness adds.
const loadNow = () => os.loadavg().map((l) => Number(l.toFixed(2)));
const { loadavgAtStart, loadavgAtEnd, ...info } = { ...machine(), loadavg: loadNow() };
console.log(
  `headline: ${N} concurrent runs per batch; ${info.cpus} CPUs, ${gib(info.memoryBytes)}, load average ${info.loadavg.join(' ')}`,
);
const results = [];
const skipped = {};
const begunAll = performance.now();
for (const flavour of flavourNames) {
  const setup = await prepareFlavour(flavour);
  if (setup.skip) {
    skipped[flavour] = setup.skip;
    console.log(`${flavour}: skipped: ${setup.skip}`);
    continue;
  }
  warmUp(flavour, setup.plain);
  for (const mode of modes) {
    const command = commandFor(flavour, mode, setup);
    process.stdout.write(`${flavour.padEnd(6)} ${MODE_LABEL[mode].padEnd(22)} `);
    const result = await runBatch(flavour, mode, command);
    results.push(result);
    console.log(
      `peak +${gib(result.peakUsedAboveIdleBytes)} (runs ${gib(result.peakRunsBytes)}), ` +
        `${result.peakOursProcesses} processes, ${seconds(result.wallMs)}, failed ${result.failed}, ` +
        `left ${result.leftovers}, load ${result.loadavgAfter[0]}`,
    );
  }
}
for (const flavour of flavourNames) {
  if (existsSync(join(os.homedir(), '.parallel', 'semaphores', `id-${semId(flavour)}`))) {
    rmSync(join(os.homedir(), '.parallel', 'semaphores', `id-${semId(flavour)}`), { recursive: true, force: true });
  }
}

const totalMs = performance.now() - begunAll;
info.loadavgEnd = loadNow();
const command = `node bench/headline.mjs ${process.argv.slice(2).join(' ')}`.trim();
const notes = [
  ...results.filter((r) => r.fallback).map((r) => `¹ ${r.flavour}: ${r.fallback}`),
  ...Object.entries(skipped).map(([f, why]) => `${f}: skipped: ${why}`),
];
const markdown = `${table(results)}${notes.length ? `\n\n${notes.join('\n')}` : ''}`;
console.log(`\n${markdown}\n`);
console.log(
  `(${seconds(totalMs)} in all; load average ${info.loadavg.join(' ')} at the start, ${info.loadavgEnd.join(' ')} at the end)`,
);

const record = {
  name: 'headline',
  machine: info,
  command,
  quick: options.quick,
  n: N,
  suite: '4 test files, each holding 300 MiB resident for 1.5 s and starting one child (sleep 120) it never stops',
  sampleMs: SAMPLE_MS,
  totalMs: Math.round(totalMs),
  skipped,
  markdown,
  results,
};
const svg = await chart(results, info);
const json = toJson(record);
writeFileSync(join(RAW_DIR, 'headline.json'), json);
writeFileSync(join(RAW_DIR, 'headline.svg'), svg);
if (options.write) {
  writeFileSync(join(BENCH_DIR, 'results', 'headline.json'), json);
  writeFileSync(join(BENCH_DIR, 'results', 'headline.svg'), svg);
  console.log('wrote bench/results/headline.json and bench/results/headline.svg');
} else console.log(`raw results in ${relative(ROOT, RAW_DIR)}/ (--write saves bench/results/headline.{json,svg})`);
process.exitCode = results.some((r) => r.timedOut) ? 1 : 0;
