#!/usr/bin/env node
// How long does finding a run's processes take when the machine is busy with processes that are not ours?
// RunTracker.sample() is what seq-test does every 100 ms–1 s while a command runs and every few dozen ms
// while it waits for leftovers. Target (docs/DESIGN): < 50 ms among 2,000 processes.
//
//   node bench/process-scan.mjs [--runs 20] [--write] [--quick]
//
// It starts a small run of its own the way the runner does (the subreaper helper, then a shell with a
// background sleep and a setsid'd sleep, all carrying a run token), then N idle `sleep` processes that
// are not part of it, and times:
//   - subtree walk: what seq-test does on Linux with the helper on every sample: the children lists from
//     the helper down (a fresh tracker, then the same tracker again);
//   - end check: what it adds when a walk finds the tree empty (and every 5 s): the processes started
//     since the run's pid-counter mark, checked for the token. Worst case: a tracker whose mark predates
//     the N processes (they all started during the run), then the same tracker again (answers cached);
//   - whole-table sweep: what seq-test does on every sample without the helper: every process against
//     the ownership rules (session, parent chain, then the environment for the token). A fresh tracker
//     whose run began before the N processes (each one's environment is read: the worst case), one for a
//     run started after them (ruled out by start time), and the same tracker again (cached);
//   - the bare /proc sweep (processTable().list(): one stat read per process), for reference;
//   - one `ps -A -o pid=,ppid=` spawn, for comparison.
// Every sample must find exactly the run's 3 processes (4 without the helper: the helper itself), or the
// benchmark fails.
// Everything it starts is ended by pid at the end (or on Ctrl-C).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
// These are core's internals (the subpath the integrations share), not its small public surface.
const { RunTracker, createToken, identityOf, processTable, subreaperPath, TOKEN_ENV } = await import(
  pathToFileURL(join(dirname(CORE), 'internal.js')).href
);
const helperPath = subreaperPath();
if (!helperPath) {
  console.error('bench: the subreaper helper was not built (no C compiler?); process-scan needs it');
  process.exit(2);
}
cleanupOnExit();

const self = identityOf(process.pid);

/**
 * A run of our own, started as the runner starts one: the helper (session leader, fd 3 its report pipe)
 * runs sh, which starts a background sleep and a setsid'd sleep; all carry the token.
 */
async function startRun() {
  const token = createToken(self);
  const helper = spawn(helperPath, ['/bin/sh', 'sh', '-c', 'sleep 3600 & setsid sleep 3600 & echo ready; wait'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    env: { ...process.env, [TOKEN_ENV]: token.value },
  });
  remember(helper.pid);
  await new Promise((resolve) => helper.stdout.once('data', resolve));
  helper.stdout.destroy();
  helper.unref();
  helper.stdio[3].unref?.();
  const root = identityOf(helper.pid);
  const newTracker = () => new RunTracker({ token: token.value, sessionId: helper.pid, root, helper: root });
  // What seq-test does without the helper: every sample a whole-table sweep (the helper is then just the
  // session leader, one more member).
  const newSweeper = () => new RunTracker({ token: token.value, sessionId: helper.pid, root });
  // Wait until both sleeps have exec'd (their comm reads "sleep").
  for (let i = 0; i < 200; i++) {
    const alive = newTracker().sample({ full: true }).alive;
    if (alive.length === 3 && alive.filter((p) => p.comm === 'sleep').length === 2) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const members = newTracker()
    .sample({ full: true })
    .alive.map((p) => p.pid);
  for (const pid of members) remember(pid);
  return { helper, members, newTracker, newSweeper };
}

async function stopRun(run) {
  // The helper ignores TERM and exits by itself once its children are gone.
  killPids(run.members);
  const left = await waitGone([...run.members, run.helper.pid], 5000);
  if (left.length > 0) console.error(`bench: run processes ${left.join(', ')} did not end`);
  for (const pid of run.members) forget(pid);
  forget(run.helper.pid);
}

function check(sample, expected, full) {
  if (sample.full !== full) throw new Error(`expected a ${full ? 'full sweep' : 'subtree walk'}, got the other`);
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
    // End-of-run checks of runs that began before the N processes started: their pid mark predates them,
    // so every one of them is a candidate (the worst case). One fresh tracker per timed call.
    const endChecks = Array.from({ length: warmup + runs }, () => runBefore.newTracker());
    const sleepers = await startSleepers(n);
    const runAfter = await startRun();
    const total = countProcesses();
    try {
      const walkFirst = timeIt(() => check(runBefore.newTracker().sample(), 3, false));
      const walker = runBefore.newTracker();
      const walkLater = timeIt(() => check(walker.sample(), 3, false));
      const endFirst = timeIt(() => check(endChecks.pop().sample({ full: true }), 3, true));
      const ender = runBefore.newTracker();
      const endLater = timeIt(() => check(ender.sample({ full: true }), 3, true));
      const firstNewer = timeIt(() => check(runBefore.newSweeper().sample(), 4, true));
      const firstOlder = timeIt(() => check(runAfter.newSweeper().sample(), 4, true));
      const sweeper = runBefore.newSweeper();
      sweeper.sample();
      const later = timeIt(() => check(sweeper.sample(), 4, true));
      const table = processTable();
      const bare = timeIt(() => table.list());
      const ps = timeIt(() => {
        const out = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
        if (out.status !== 0) throw new Error(`ps exited ${out.status}`);
      });
      results.push({
        started: n,
        total,
        walkFirst,
        walkLater,
        endFirst,
        endLater,
        firstNewer,
        firstOlder,
        later,
        bare,
        ps,
      });
    } finally {
      await stopRun(runAfter);
      await stopSleepers(sleepers);
    }
  }
} finally {
  await stopRun(runBefore);
}

const worst = results.find((r) => r.started === 2000) ?? results[results.length - 1];
const met = worst.walkFirst.median < TARGET_MS && worst.walkLater.median < TARGET_MS;
const cell = (s) => `${fmt(s.median, 2)} (${fmt(s.iqr, 2)})`;
console.log('');
console.log(
  markdownTable(
    [
      'unrelated started',
      'processes on the machine',
      'subtree walk, fresh tracker',
      'subtree walk, later',
      'end check, unrelated started during the run',
      'end check, later',
      'whole-table sweep, unrelated newer than the run',
      'whole-table sweep, unrelated older',
      'whole-table sweep, later',
      'bare /proc stat sweep',
      '`ps -A -o pid=,ppid=`',
    ],
    results.map((r) => [
      String(r.started),
      String(r.total),
      cell(r.walkFirst),
      cell(r.walkLater),
      cell(r.endFirst),
      cell(r.endLater),
      cell(r.firstNewer),
      cell(r.firstOlder),
      cell(r.later),
      fmt(r.bare.median),
      fmt(r.ps.median),
    ]),
  ),
);
console.log('\n(milliseconds: median (IQR))\n');
console.log(
  `target: finding the run among ${worst.total} processes < ${TARGET_MS} ms → subtree walk ${fmt(worst.walkFirst.median, 2)} ms (fresh) / ${fmt(worst.walkLater.median, 2)} ms (later): ${met ? 'met' : 'MISSED'}; end check ${fmt(worst.endFirst.median)} / ${fmt(worst.endLater.median)} ms; whole-table sweep (no helper) ${fmt(worst.firstNewer.median)} / ${fmt(worst.firstOlder.median)} / ${fmt(worst.later.median)} ms`,
);
if (options.write) {
  const file = writeResults('process-scan', { runs, warmup, targetMs: TARGET_MS, met, results });
  console.log(`wrote ${file}`);
}
