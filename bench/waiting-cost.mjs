#!/usr/bin/env node
// What a run costs while it waits for the lock, and what three runs at once cost on a suite shaped like a
// real one (issue 15, item 4).
//
//   node bench/waiting-cost.mjs [--write] [--files 60] [--parts waiting,three] [--runners vitest,jest,pytest]
//                               [--quick]
//
// --quick (a smoke run): a suite of 10 files (one of them spawning), and part "three" for Vitest only.
// The suite (bench/lib/real-suite.mjs) is generated into bench/results/raw/real-suite/: 60 small test files
// of five quick tests each, every tenth also spawning executables (a script by its shebang, a shell pipeline,
// node), in the same form for Vitest (the repository's), Jest 30 (test/jest/matrix/jest30) and pytest
// (/usr/bin/python3 with pytest and pytest-xdist).
//
// Part "waiting": a holder takes the lock (`seq-test run -- sleep`, or `flock FILE sleep`), then one waiter
// starts: Vitest with the plugin, Jest with withSeqTest(), pytest with the generated plugin, `seq-test run --
// vitest run` and `flock FILE vitest run`. Once it waits (its ticket is in the queue; for flock after 3 s)
// and 3 s more have passed, its PSS (/proc/PID/smaps_rollup, the process and everything below it) is read
// five times, 0.5 s apart; the median is reported. PSS divides shared pages among the processes sharing them,
// so a waiter is not charged for the whole node binary another process also maps.
//
// Part "three": three runs at once of each runner on the same suite — plain (the runner's defaults), with
// the integration, and under flock(1) — sampling every 200 ms the summed PSS of every process the runs
// started (found by an environment marker); the peak is reported, and as a share of plain's peak.
//
// Everything runs with a private SEQ_TEST_STATE_DIR and key; every process started is ended by pid.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BENCH_DIR,
  CLI,
  cleanupOnExit,
  endStarted,
  markdownTable,
  ROOT,
  remember,
  waitForBuild,
  writeResults,
} from './lib/harness.mjs';
import { writeRealSuite } from './lib/real-suite.mjs';

const args = process.argv.slice(2);
const write = args.includes('--write');
const quick = args.includes('--quick');
const filesAt = args.indexOf('--files');
const FILES = filesAt >= 0 ? Number(args[filesAt + 1]) : quick ? 10 : 60;
const partsAt = args.indexOf('--parts');
const PARTS = partsAt >= 0 ? args[partsAt + 1].split(',') : ['waiting', 'three'];
const runnersAt = args.indexOf('--runners');
const RUNNERS = runnersAt >= 0 ? args[runnersAt + 1].split(',') : quick ? ['vitest'] : ['vitest', 'jest', 'pytest'];
if (!Number.isInteger(FILES) || FILES < 1) {
  console.error(`bench: --files expects a whole number, got "${args[filesAt + 1]}"`);
  process.exit(2);
}
if (process.platform !== 'linux') {
  console.error('bench: waiting-cost reads /proc/PID/smaps_rollup; skipped on', process.platform);
  process.exit(0);
}

const MIB = 1024 * 1024;
const PYTHON = '/usr/bin/python3';
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const SUITES = join(BENCH_DIR, 'results', 'raw', 'real-suite');
const STATE = join(SUITES, 'state');
const KEY = `waiting-cost-${process.pid}`;
const MARKER = 'SEQ_TEST_WAITING_COST_RUN';
const markerValue = `${process.pid}-${Date.now()}`;

cleanupOnExit();
await waitForBuild();

// --- the suites -------------------------------------------------------------------------------------------

const { ensureJest } = await import(join(ROOT, 'test', 'jest', 'matrix', 'install.mjs'));
const jest = await ensureJest('jest30');

function prepare() {
  const vitestDir = join(SUITES, 'vitest');
  writeRealSuite(vitestDir, 'vitest', FILES);
  writeFileSync(
    join(vitestDir, 'vitest.plain.config.mjs'),
    "export default { test: { include: ['tests/**/*.test.mjs'] } };\n",
  );
  writeFileSync(
    join(vitestDir, 'vitest.seq-test.config.mjs'),
    "import { seqTest } from '@seq-test/vitest';\n\nexport default { plugins: [seqTest()], test: { include: ['tests/**/*.test.mjs'] } };\n",
  );
  const jestDir = join(SUITES, 'jest');
  writeRealSuite(jestDir, 'jest', FILES);
  // The repository's package.json says "type": "module"; this suite is CommonJS, as most Jest suites are.
  writeFileSync(join(jestDir, 'package.json'), '{ "private": true, "type": "commonjs" }\n');
  writeFileSync(
    join(jestDir, 'jest.plain.config.js'),
    "module.exports = { rootDir: __dirname, testEnvironment: 'node', testMatch: ['<rootDir>/tests/**/*.test.js'] };\n",
  );
  writeFileSync(
    join(jestDir, 'jest.seq-test.config.js'),
    "const { withSeqTest } = require('@seq-test/jest');\n\nmodule.exports = withSeqTest(require('./jest.plain.config.js'));\n",
  );
  const pytestPlain = join(SUITES, 'pytest-plain');
  const pytestSeq = join(SUITES, 'pytest-seq-test');
  for (const dir of [pytestPlain, pytestSeq]) {
    writeRealSuite(dir, 'pytest', FILES);
    writeFileSync(join(dir, 'pytest.ini'), '[pytest]\ntestpaths = tests\n');
  }
  return { vitestDir, jestDir, pytestPlain, pytestSeq };
}

const dirs = prepare();
const { writePytestFiles } = await import(join(ROOT, 'packages', 'cli', 'dist', 'index.js'));
writePytestFiles(dirs.pytestSeq);
const pytestOk = spawnSync(PYTHON, ['-c', 'import pytest, xdist'], { stdio: 'ignore' }).status === 0;

const node = process.execPath;
const vitestPlain = { cwd: dirs.vitestDir, argv: [node, VITEST, 'run', '--config', 'vitest.plain.config.mjs'] };
const commands = {
  vitest: {
    plain: vitestPlain,
    seqTest: { cwd: dirs.vitestDir, argv: [node, VITEST, 'run', '--config', 'vitest.seq-test.config.mjs'] },
  },
  jest: {
    plain: { cwd: dirs.jestDir, argv: [node, jest.bin, '--config', 'jest.plain.config.js'] },
    seqTest: { cwd: dirs.jestDir, argv: [node, jest.bin, '--config', 'jest.seq-test.config.js'] },
  },
  pytest: {
    plain: { cwd: dirs.pytestPlain, argv: [PYTHON, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-n', '4'] },
    seqTest: { cwd: dirs.pytestSeq, argv: [PYTHON, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-n', '4'] },
  },
};

function env(tag) {
  const base = { ...process.env };
  for (const key of Object.keys(base)) if (/^(SEQ_TEST_|VITEST|JEST_WORKER_ID|PYTEST_)/.test(key)) delete base[key];
  return {
    ...base,
    SEQ_TEST_STATE_DIR: STATE,
    SEQ_TEST_KEY: KEY,
    [MARKER]: `${markerValue}/${tag}`,
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    CI: 'true',
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

function start(command, tag) {
  const [file, ...rest] = command.argv;
  const child = spawn(file, rest, { cwd: command.cwd, env: env(tag), stdio: ['ignore', 'pipe', 'pipe'] });
  remember(child.pid);
  const out = { text: '' };
  child.stdout.on('data', (d) => {
    out.text += d;
  });
  child.stderr.on('data', (d) => {
    out.text += d;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

// --- /proc ------------------------------------------------------------------------------------------------

function read(path) {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

function pssBytes(pid) {
  const kb = /^Pss:\s+(\d+) kB/m.exec(read(`/proc/${pid}/smaps_rollup`))?.[1];
  return kb ? Number(kb) * 1024 : 0;
}

function allPids() {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function ppidOf(pid) {
  const stat = read(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function tree(root) {
  const byParent = new Map();
  for (const pid of allPids()) {
    const parent = ppidOf(pid);
    byParent.set(parent, [...(byParent.get(parent) ?? []), pid]);
  }
  const found = [root];
  for (let i = 0; i < found.length; i++) found.push(...(byParent.get(found[i]) ?? []));
  return found.filter((pid) => read(`/proc/${pid}/stat`) !== '');
}

function marked(prefix) {
  const needle = `${MARKER}=${markerValue}/${prefix}`;
  return allPids().filter((pid) => read(`/proc/${pid}/environ`).includes(needle));
}

function killTree(root) {
  for (const pid of tree(root).reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

function ticketCount() {
  let count = 0;
  const visit = (dir) => {
    let entries = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) visit(join(dir, e.name));
      else if (dir.endsWith('tickets') && e.name.endsWith('.json')) count++;
    }
  };
  visit(STATE);
  return count;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mib = (bytes) => (bytes / MIB).toFixed(1);

// --- part 1: one waiting run --------------------------------------------------------------------------------

async function waitingCost() {
  const flockFile = join(SUITES, 'bench.flock');
  const waiters = [
    { name: 'Vitest + plugin', command: commands.vitest.seqTest, lock: 'seq-test' },
    { name: 'Jest + withSeqTest', command: commands.jest.seqTest, lock: 'seq-test' },
    ...(pytestOk ? [{ name: 'pytest + plugin', command: commands.pytest.seqTest, lock: 'seq-test' }] : []),
    {
      name: 'seq-test run -- vitest run',
      command: { cwd: dirs.vitestDir, argv: [node, CLI, 'run', '--', ...vitestPlain.argv] },
      lock: 'seq-test',
    },
    {
      name: 'flock FILE vitest run',
      command: { cwd: dirs.vitestDir, argv: ['flock', flockFile, ...vitestPlain.argv] },
      lock: 'flock',
    },
  ];
  const rows = [];
  for (const waiter of waiters) {
    rmSync(STATE, { recursive: true, force: true });
    const holderCommand =
      waiter.lock === 'flock'
        ? { cwd: SUITES, argv: ['flock', flockFile, 'sleep', '600'] }
        : { cwd: SUITES, argv: [node, CLI, 'run', '--quiet', '--', 'sleep', '600'] };
    const holder = start(holderCommand, 'holder');
    if (waiter.lock === 'seq-test') await until(() => ticketCount() === 1, 30_000, 'the holder to hold');
    else await sleep(1000);
    const run = start(waiter.command, 'waiter');
    const t0 = Date.now();
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    const queued = () => {
      if (exited) throw new Error(`${waiter.name} exited before it queued:\n${run.out.text}`);
      return ticketCount() === 2;
    };
    if (waiter.lock === 'seq-test') await until(queued, 120_000, `${waiter.name} to queue`);
    else await sleep(3000);
    const queuedAfterMs = Date.now() - t0;
    await sleep(3000);
    const samples = [];
    for (let i = 0; i < 5; i++) {
      samples.push(tree(run.child.pid).reduce((sum, pid) => sum + pssBytes(pid), 0));
      await sleep(500);
    }
    const processes = tree(run.child.pid).length;
    killTree(run.child.pid);
    killTree(holder.child.pid);
    await Promise.all([run.exited, holder.exited]);
    rmSync(STATE, { recursive: true, force: true }); // the waiter's ticket, dead after SIGKILL
    rows.push({ waiter: waiter.name, pssBytes: median(samples), processes, queuedAfterMs });
    console.log(`${waiter.name}: PSS ${mib(median(samples))} MiB in ${processes} process(es)`);
  }
  return rows;
}

async function until(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// --- part 2: three at once ------------------------------------------------------------------------------

async function threeAtOnce() {
  const rows = [];
  const runners = RUNNERS.filter((runner) => runner !== 'pytest' || pytestOk);
  for (const runner of runners) {
    const flockFile = join(SUITES, `${runner}.flock`);
    const modes = {
      plain: commands[runner].plain,
      'seq-test (integration)': commands[runner].seqTest,
      'flock(1)': { cwd: commands[runner].plain.cwd, argv: ['flock', flockFile, ...commands[runner].plain.argv] },
    };
    // One untimed run: caches (Vite's, Jest's transform cache, pyc-less imports) warm before measuring.
    await start(commands[runner].plain, `warm/${runner}`).exited;
    const results = {};
    for (const [mode, command] of Object.entries(modes)) {
      const tag = `three/${runner}/${mode}`;
      const t0 = Date.now();
      const runs = [0, 1, 2].map((i) => start(command, `${tag}/${i}`));
      let peak = 0;
      let done = false;
      void Promise.all(runs.map((r) => r.exited)).then(() => {
        done = true;
      });
      while (!done) {
        const sum = marked(tag).reduce((total, pid) => total + pssBytes(pid), 0);
        peak = Math.max(peak, sum);
        await sleep(200);
      }
      const codes = await Promise.all(runs.map((r) => r.exited));
      const failed = codes.filter((c) => c.code !== 0).length;
      for (const pid of marked(tag)) killTree(pid); // leftovers of plain runs (none expected)
      results[mode] = { peakPssBytes: peak, wallMs: Date.now() - t0, failed };
      console.log(
        `${runner} ${mode}: peak PSS ${mib(peak)} MiB, ${((Date.now() - t0) / 1000).toFixed(1)} s, ${failed} failed`,
      );
    }
    const plainPeak = results.plain.peakPssBytes;
    for (const [mode, r] of Object.entries(results))
      rows.push({ runner, mode, ...r, shareOfPlain: r.peakPssBytes / plainPeak });
  }
  return rows;
}

// --- report -----------------------------------------------------------------------------------------------

const data = { files: FILES, runners: RUNNERS };
if (PARTS.includes('waiting')) data.waiting = await waitingCost();
if (PARTS.includes('three')) data.three = await threeAtOnce();
endStarted();

if (data.waiting) {
  console.log(`\nOne run waiting for the lock (suite of ${FILES} files), PSS of its process tree:\n`);
  console.log(
    markdownTable(
      ['waiter', 'PSS', 'processes'],
      data.waiting.map((r) => [r.waiter, `${mib(r.pssBytes)} MiB`, String(r.processes)]),
    ),
  );
}
if (data.three) {
  console.log(`\nThree runs at once (suite of ${FILES} files): peak summed PSS, and as a share of plain's\n`);
  console.log(
    markdownTable(
      ['runner', 'mode', 'peak PSS', 'share of plain', 'wall', 'failed runs'],
      data.three.map((r) => [
        r.runner,
        r.mode,
        `${mib(r.peakPssBytes)} MiB`,
        `${Math.round(r.shareOfPlain * 100)} %`,
        `${(r.wallMs / 1000).toFixed(1)} s`,
        String(r.failed),
      ]),
    ),
  );
}
if (write) console.log(`\nwritten: ${writeResults('waiting-cost', data)}`);
if (!existsSync(STATE)) process.exitCode = 0;
