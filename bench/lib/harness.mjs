// A tiny benchmark harness: time commands, summarise with medians and interquartile ranges, compare with a
// peer measured in the same run, print markdown, optionally save JSON. No dependencies beyond Node itself.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);
export const CLI = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');
export const CLI_INDEX = join(ROOT, 'packages', 'cli', 'dist', 'index.js');
export const CORE = join(ROOT, 'packages', 'core', 'dist', 'index.js');
export const HELPER = join(ROOT, 'packages', 'core', 'dist', 'seq-test-subreaper');
/**
 * Where benchmarks keep raw samples and logs (git ignores it). SEQ_TEST_BENCH_RAW_DIR moves it: the smoke
 * test of the benchmarks (test/bench) uses a temporary one, so it never overwrites a real run's files.
 */
export const RAW_DIR = process.env.SEQ_TEST_BENCH_RAW_DIR || join(BENCH_DIR, 'results', 'raw');

/** Whether the built Linux subreaper helper is there (a rebuild in progress removes it for a while). */
export function helperPresent() {
  try {
    accessSync(HELPER, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits (up to `timeoutMs`) until the build output a benchmark needs is complete: the CLI, core and, on
 * Linux, the helper. Another build running at the same time empties dist/ for a few seconds.
 */
export async function waitForBuild(timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  const ready = () => existsSync(CLI) && existsSync(CORE) && (process.platform !== 'linux' || helperPresent());
  while (!ready()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
  return true;
}

/** `--runs 30`, `--write`, `--quick` and friends; unknown flags are an error so typos do not go unnoticed. */
export function parseArgs(argv = process.argv.slice(2), known = {}) {
  const options = { runs: undefined, warmup: undefined, write: false, quick: false, ...known };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--write') options.write = true;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--runs' || arg === '--warmup') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0) fail(`${arg} expects a whole number, got "${argv[i]}"`);
      options[arg.slice(2)] = value;
    } else if (arg === '--help' || arg === '-h') {
      console.log('options: --runs N  --warmup N  --quick (fewer runs)  --write (save bench/results/<name>.json)');
      process.exit(0);
    } else fail(`unknown option "${arg}" (try --help)`);
  }
  return options;
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

let clockTicks;
/**
 * CPU time (user + system, ms) of every child this process has waited for so far: fields 16 and 17 of
 * /proc/self/stat, in clock ticks (usually 10 ms). Too coarse for one call; summed over many calls it gives
 * a mean that does not move with the machine's load the way wall time does. Linux only (0 elsewhere).
 */
export function childrenCpuMs() {
  if (process.platform !== 'linux') return 0;
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
}

/** Milliseconds since an arbitrary point, with nanosecond resolution. */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Runs one command to completion and returns its wall time in ms. A status other than `expectStatus` throws,
 * so a benchmark never silently times a failure.
 */
export function timeCommand({ file, args = [], env, cwd = ROOT, expectStatus = 0 }) {
  const begun = nowMs();
  const result = spawnSync(file, args, { env: env ?? process.env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = nowMs() - begun;
  if (result.error) throw result.error;
  if (result.status !== expectStatus) {
    const stderr = result.stderr?.toString().trim();
    throw new Error(
      `${[file, ...args].join(' ')} exited ${result.status ?? result.signal}, expected ${expectStatus}${stderr ? `: ${stderr}` : ''}`,
    );
  }
  return elapsed;
}

/**
 * Measures several cases interleaved: each round runs every case once, in a rotating order, so drift in the
 * machine's load touches all cases alike. Returns { name: samples[] }.
 */
export function measureInterleaved(cases, { runs = 30, warmup = 3, onRound } = {}) {
  const samples = Object.fromEntries(cases.map((c) => [c.name, []]));
  for (let round = -warmup; round < runs; round++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + Math.max(round, 0)) % cases.length];
      const ms = c.run ? c.run() : timeCommand(c);
      if (round >= 0) samples[c.name].push(ms);
    }
    if (round >= 0) onRound?.(round + 1, runs);
  }
  return samples;
}

/** Quantile with linear interpolation between closest ranks (the same as numpy's default). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    q1,
    q3,
    iqr: q3 - q1,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
  };
}

/** Ratio of medians, plus the median of per-round ratios (robust to drift when samples were interleaved). */
export function ratio(samples, peerSamples) {
  const ofMedians = stats(samples).median / stats(peerSamples).median;
  const paired = samples.slice(0, peerSamples.length).map((v, i) => v / peerSamples[i]);
  return { ofMedians, pairedMedian: stats(paired).median };
}

export const fmt = (ms, digits = 1) => (Number.isFinite(ms) ? ms.toFixed(digits) : '–');
export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');

export function markdownTable(headers, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

// The machine is often shared: the load when the benchmark started is part of the result.
const loadAtStart = os.loadavg().map((l) => Number(l.toFixed(2)));

/** What the numbers were measured on, for the JSON record and the README. */
export function machine() {
  let kernel = os.release();
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {}
  return {
    date: new Date().toISOString(),
    platform: process.platform,
    kernel,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    loadavgAtStart: loadAtStart,
    loadavgAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

export function writeResults(name, data) {
  const file = join(BENCH_DIR, 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ name, machine: machine(), ...data }, null, 2)}\n`);
  return file;
}

// --- processes we start ---------------------------------------------------------------------------------

const started = new Set();

/** Remembers a pid we started so `endStarted()` (and the exit hook) can end it. */
export function remember(pid) {
  if (pid) started.add(pid);
  return pid;
}

export function forget(pid) {
  started.delete(pid);
}

/** Ends every process we started, by pid (never by name); safe to call more than once. */
export function endStarted(signal = 'SIGKILL') {
  for (const pid of started) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
  started.clear();
}

let hooked = false;
/** Makes sure a benchmark interrupted by Ctrl-C or an exception leaves nothing behind. */
export function cleanupOnExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => endStarted());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      endStarted();
      process.exit(130);
    });
  }
}

/**
 * Starts `count` idle `sleep` processes through one shell that waits for them (so they are reaped, not left
 * as zombies), and resolves to their pids. End them with endStarted() or killPids().
 */
export function startSleepers(count, { seconds = 3600, env } = {}) {
  return new Promise((resolve, reject) => {
    const shell = spawn(
      '/bin/sh',
      ['-c', `i=0; while [ $i -lt ${count} ]; do /bin/sleep ${seconds} & echo $!; i=$((i+1)); done; echo done; wait`],
      { stdio: ['ignore', 'pipe', 'inherit'], env: env ?? process.env },
    );
    remember(shell.pid);
    const pids = [];
    let buffer = '';
    shell.stdout.on('data', (chunk) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line === 'done') {
          shell.unref();
          shell.stdout.destroy();
          resolve({ shell, pids });
        } else pids.push(remember(Number(line)));
        newline = buffer.indexOf('\n');
      }
    });
    shell.once('error', reject);
    shell.once('exit', (code) => {
      if (pids.length < count) reject(new Error(`sleeper shell exited (${code}) after ${pids.length} of ${count}`));
    });
  });
}

export function killPids(pids, signal = 'SIGKILL') {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {}
    forget(pid);
  }
}

/** Ends what startSleepers started: the sleepers by pid, then waits for their shell to reap them and exit. */
export async function stopSleepers({ shell, pids }) {
  const exited = new Promise((resolve) => {
    if (shell.exitCode !== null || shell.signalCode !== null) resolve();
    else shell.once('exit', resolve);
  });
  killPids(pids);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (shell.exitCode === null && shell.signalCode === null) killPids([shell.pid]);
  forget(shell.pid);
}

/** Number of processes on the machine right now (Linux; undefined elsewhere). */
export function countProcesses() {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).length;
  } catch {
    return undefined;
  }
}

/** Waits until none of `pids` exists any more (or the time is up); returns the ones still there. */
export async function waitGone(pids, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let left = pids;
  while (left.length > 0 && Date.now() < deadline) {
    left = left.filter((pid) => isRunning(pid));
    if (left.length > 0) await new Promise((r) => setTimeout(r, 20));
  }
  return left;
}

/** True while the pid exists and is not a zombie. */
export function isRunning(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    if (process.platform === 'linux') return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Tags what a benchmark starts with a marker in the environment, so that what a run leaves behind can be
 * found, counted per case and ended by pid (never by name). Spread `env` into the environment of the runs.
 */
export function leftoverTracker(name = 'SEQ_TEST_BENCH_MARKER') {
  const value = randomUUID();
  const leftBehind = {};
  /** Pids of live processes carrying the marker (zombies excluded). */
  const marked = () => {
    const pids = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
        if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(`${name}=${value}`)) pids.push(Number(entry));
      } catch {}
    }
    return pids;
  };
  /** Counts what is left under `caseName` and ends it with SIGKILL, by pid. */
  const endMarked = (caseName) => {
    const pids = marked();
    leftBehind[caseName] = (leftBehind[caseName] ?? 0) + pids.length;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  };
  return { env: { [name]: value }, leftBehind, marked, endMarked };
}

/**
 * The comparison the Jest and Vitest benchmarks share: one group per version of the test runner, each with a
 * case under the integration (`with`) and one without it (`plain`), all run interleaved. Prints the table
 * and returns one row per group (medians, IQRs, both ratios, what each case left behind) and the samples.
 * `leftBehind` is the leftoverTracker's count, filled while the cases run.
 */
export function compareWithPlain({ name, tool, withLabel, plainLabel, groups, runs, warmup, leftBehind }) {
  const cases = groups.flatMap((group) => [group.with, group.plain]);
  console.log(`${name}: ${cases.length} cases × ${runs} runs (after ${warmup} warm-up rounds), interleaved`);
  const samples = measureInterleaved(cases, {
    runs,
    warmup,
    onRound: (done, total) => process.stderr.write(`  round ${done}/${total}\n`),
  });
  const rows = groups.map(({ version, extra, with: withCase, plain }) => {
    const withIt = samples[withCase.name];
    const without = samples[plain.name];
    const r = ratio(withIt, without);
    return {
      version,
      ...extra,
      withMedian: stats(withIt).median,
      withIqr: stats(withIt).iqr,
      plainMedian: stats(without).median,
      plainIqr: stats(without).iqr,
      ratioOfMedians: r.ofMedians,
      pairedRatio: r.pairedMedian,
      // Warm-up rounds included: every plain run leaves one behind, every run with the integration none.
      leftBehindWith: leftBehind[withCase.name] ?? 0,
      leftBehindPlain: leftBehind[plain.name] ?? 0,
    };
  });
  console.log('');
  console.log(
    markdownTable(
      [
        tool,
        `${withLabel} median ms (IQR)`,
        `${plainLabel} median ms (IQR)`,
        'ratio of medians',
        'median of paired ratios',
        'processes left behind (with / plain)',
      ],
      rows.map((r) => [
        r.version,
        `${fmt(r.withMedian, 0)} (${fmt(r.withIqr, 0)})`,
        `${fmt(r.plainMedian, 0)} (${fmt(r.plainIqr, 0)})`,
        fmtRatio(r.ratioOfMedians),
        fmtRatio(r.pairedRatio),
        `${r.leftBehindWith} / ${r.leftBehindPlain}`,
      ]),
    ),
  );
  return { rows, samples };
}

/** One line per row of compareWithPlain: the time the integration adds against `target` (a ratio). */
export function printAddedTargets(rows, { tool, integration, target }) {
  for (const r of rows) {
    const added = (r.ratioOfMedians - 1) * 100;
    console.log(
      `target: ${tool} ${r.version} with ${integration} < ${Math.round((target - 1) * 100)} % over plain → ${added >= 0 ? '+' : ''}${added.toFixed(1)} %: ${r.ratioOfMedians < target ? 'met' : 'MISSED'}`,
    );
  }
}
