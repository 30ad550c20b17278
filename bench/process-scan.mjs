#!/usr/bin/env node
// How long does one sweep of the process table take when the machine is busy with processes that are not
// ours? RunTracker.sample() is what seq-test does every 100 ms–1 s while a command runs and every few
// dozen ms while it waits for leftovers. Target (docs/DESIGN): < 50 ms among 2,000 processes.
//
//   node bench/process-scan.mjs [--runs 20] [--write] [--quick]
//
// It starts a small "run" of its own (a shell with a background sleep and a setsid'd sleep, carrying a run
// token), then N idle `sleep` processes that are not part of it, and times:
//   - first sweep, unrelated newer than the run: a fresh RunTracker whose run began before the N processes
//     started, so every one of them is looked at in full (stat, parent chain, then its environment for the
//     token). This is the worst case, e.g. other test runs starting while ours runs.
//   - first sweep, unrelated older than the run: a fresh tracker for a run started after the N processes;
//     they are ruled out by start time alone (the usual case: the machine's existing processes).
//   - later sweeps: the same tracker again; environments already read are cached per (pid, start time).
//   - the bare /proc sweep (processTable().list(): one stat read per process), for reference;
//   - one `ps -A -o pid=,ppid=` spawn, for comparison.
// Every sweep must find exactly the run's 3 processes, or the benchmark fails.
// Everything it starts is ended by pid at the end (or on Ctrl-C).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  CORE,
  cleanupOnExit,
  countProcesses,
  fmt,
  forget,
  killPids,
  markdownTable,
  nowMs,
  parseArgs,
  remember,
  startSleepers,
  stats,
  stopSleepers,
  waitGone,
  writeResults,
} from './lib/harness.mjs';

const options = parseArgs();
const runs = options.runs ?? (options.quick ? 8 : 20);
const warmup = options.warmup ?? 3;
const levels = options.quick ? [100, 500] : [100, 500, 2000];
const TARGET_MS = 50;

if (process.platform !== 'linux') {
  console.error('bench: process-scan measures the Linux /proc sweep; skipped on', process.platform);
  process.exit(0);
}
if (!existsSync(CORE)) {
  console.error('bench: build first: npx turbo run build');
  process.exit(2);
}
const { RunTracker, createToken, identityOf, processTable, TOKEN_ENV } = await import(pathToFileURL(CORE).href);
cleanupOnExit();

const self = identityOf(process.pid);

/** A run of our own: sh (session leader) + background sleep + setsid'd sleep, all carrying the token. */
async function startRun() {
  const token = createToken(self);
  const child = spawn('/bin/sh', ['-c', 'sleep 3600 & setsid sleep 3600 & echo ready; wait'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, [TOKEN_ENV]: token.value },
  });
  remember(child.pid);
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.stdout.destroy();
  child.unref();
  const root = identityOf(child.pid);
  const newTracker = () => new RunTracker({ token: token.value, sessionId: child.pid, root });
  // Wait until both sleeps have exec'd (their comm reads "sleep").
  for (let i = 0; i < 200; i++) {
    const alive = newTracker().sample().alive;
    if (alive.length === 3 && alive.every((p) => p.pid === child.pid || p.comm === 'sleep')) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const members = newTracker()
    .sample()
    .alive.map((p) => p.pid);
  for (const pid of members) remember(pid);
  return { child, members, newTracker };
}

async function stopRun(run) {
  killPids(run.members);
  const left = await waitGone(run.members, 5000);
  if (left.length > 0) console.error(`bench: run processes ${left.join(', ')} did not end`);
  forget(run.child.pid);
}

function check(sample, expected) {
  if (sample.alive.length !== expected) {
    throw new Error(
      `a sweep found ${sample.alive.length} processes of the run, expected ${expected}: ${sample.alive.map((p) => `${p.pid} ${p.comm}`).join(', ')}`,
    );
  }
}

function timeIt(fn) {
  const samples = [];
  for (let i = -warmup; i < runs; i++) {
    const begun = nowMs();
    fn();
    const elapsed = nowMs() - begun;
    if (i >= 0) samples.push(elapsed);
  }
  return stats(samples);
}

const runBefore = await startRun();
const results = [];
try {
  for (const n of levels) {
    process.stderr.write(`process-scan: starting ${n} unrelated sleep processes…\n`);
    const sleepers = await startSleepers(n);
    const runAfter = await startRun();
    const total = countProcesses();
    try {
      const firstNewer = timeIt(() => check(runBefore.newTracker().sample(), 3));
      const firstOlder = timeIt(() => check(runAfter.newTracker().sample(), 3));
      const tracker = runBefore.newTracker();
      tracker.sample();
      const later = timeIt(() => check(tracker.sample(), 3));
      const table = processTable();
      const bare = timeIt(() => table.list());
      const ps = timeIt(() => {
        const out = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
        if (out.status !== 0) throw new Error(`ps exited ${out.status}`);
      });
      results.push({ started: n, total, firstNewer, firstOlder, later, bare, ps });
    } finally {
      await stopRun(runAfter);
      await stopSleepers(sleepers);
    }
  }
} finally {
  await stopRun(runBefore);
}

const worst = results.find((r) => r.started === 2000) ?? results[results.length - 1];
const met = worst.firstNewer.median < TARGET_MS && worst.later.median < TARGET_MS;
console.log('');
console.log(
  markdownTable(
    [
      'unrelated started',
      'processes on the machine',
      'first sweep, unrelated newer than the run: median (IQR) ms',
      'first sweep, unrelated older: median (IQR) ms',
      'later sweeps: median (IQR) ms',
      'bare /proc stat sweep: median ms',
      '`ps -A -o pid=,ppid=`: median ms',
      'later sweep ÷ ps',
    ],
    results.map((r) => [
      String(r.started),
      String(r.total),
      `${fmt(r.firstNewer.median)} (${fmt(r.firstNewer.iqr)})`,
      `${fmt(r.firstOlder.median)} (${fmt(r.firstOlder.iqr)})`,
      `${fmt(r.later.median)} (${fmt(r.later.iqr)})`,
      fmt(r.bare.median),
      fmt(r.ps.median),
      `${(r.later.median / r.ps.median).toFixed(2)}×`,
    ]),
  ),
);
console.log('');
console.log(
  `target: a sweep among ${worst.total} processes < ${TARGET_MS} ms → first ${fmt(worst.firstNewer.median)} ms, later ${fmt(worst.later.median)} ms: ${met ? 'met' : 'MISSED'}`,
);
if (options.write) {
  const file = writeResults('process-scan', { runs, warmup, targetMs: TARGET_MS, met, results });
  console.log(`wrote ${file}`);
}
