#!/usr/bin/env node
// What idle waiters cost (issue 13, item 12): N queued `seq-test run` against N `flock(1)` waiters, in the same
// run. A holder takes the lock (`seq-test run -- sleep`, `flock FILE sleep`), N waiters queue behind it, and
// once all are queued each waiter's tree (the process and everything below it: for seq-test its parked
// subreaper helper, or the launcher's Node child) is measured. `seq-test run` is started twice: the way a
// user's shell starts it (the npm bin, packages/cli/bin/seq-test: on Linux with the helper, the launcher
// waits alone while the run is far from the head), and as `node dist/bin.js run` (Node waits, as before):
// - PSS from /proc/PID/smaps_rollup (shared pages divided among the processes sharing them), summed per tree;
// - CPU time (utime + stime of /proc/PID/stat, in clock ticks) over a window of --seconds while nothing changes;
// - wakeups over that window: voluntary context switches (each one a sleep that ended) of every thread of the
//   tree, from /proc/PID/task/TID/status: a timer shows here long before it adds up to a clock tick.
//
//   node bench/idle-waiters.mjs [--waiters 50] [--seconds 30] [--settle 40] [--quick] [--write]
//
// --settle: seconds between the last waiter queueing and the window. A Node process does work of its own in
// its first seconds even when it waits on nothing: V8's memory reducer runs a few garbage collections some
// 8 s after start-up and stops, and on a quiet machine 20 s were measured not to be enough (a few waiters
// still woke some dozens of times 15-25 s after start, none after). The window measures a waiter at rest.
// --quick (a smoke run): 5 waiters, a 3 s window, a 3 s settle.
//
// Everything runs with a private SEQ_TEST_STATE_DIR and key; every process started is ended by pid.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CLI,
  cleanupOnExit,
  endStarted,
  markdownTable,
  ROOT,
  remember,
  waitForBuild,
  writeResults,
} from './lib/harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const QUICK = args.includes('--quick');
const WAITERS = option('--waiters', QUICK ? 5 : 50);
const SECONDS = option('--seconds', QUICK ? 3 : 30);
const SETTLE_SECONDS = option('--settle', QUICK ? 3 : 40);
const BIN = join(ROOT, 'packages', 'cli', 'bin', 'seq-test');
const TICKS = 100; // USER_HZ
const MIB = 1024 * 1024;
if (process.platform !== 'linux') {
  console.error('bench: idle-waiters reads /proc; skipped on', process.platform);
  process.exit(0);
}
if (!(await waitForBuild())) {
  console.error('bench: build first (npx turbo run build)');
  process.exit(2);
}
cleanupOnExit();

const work = mkdtempSync(join(tmpdir(), 'seq-test-idle-'));
const env = { ...process.env, SEQ_TEST_STATE_DIR: join(work, 'state'), SEQ_TEST_KEY: `idle-${process.pid}` };
delete env.SEQ_TEST_TOKEN;

function start(file, argv) {
  const child = spawn(file, argv, { env, stdio: 'ignore' });
  remember(child.pid);
  return child.pid;
}

/** The pid and every descendant (through /proc/PID/task/TID/children). */
function tree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(' ').map(Number));
      }
    } catch {}
  }
  return out;
}

const pss = (pid) =>
  Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
const rss = (pid) =>
  Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
const cpuTicks = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
};
const wakeups = (pid) =>
  readdirSync(`/proc/${pid}/task`).reduce(
    (total, tid) =>
      total +
      Number(
        /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0,
      ),
    0,
  );
const sum = (pids, f) =>
  pids.reduce((total, pid) => {
    try {
      return total + f(pid);
    } catch {
      return total; // gone
    }
  }, 0);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(label, holderArgv, waiterArgv, queued, settled = () => true) {
  const holder = start(...holderArgv);
  await sleep(1000);
  const waiters = Array.from({ length: WAITERS }, () => start(...waiterArgv));
  const deadline = Date.now() + 300_000;
  while (!queued(waiters) && Date.now() < deadline) await sleep(200);
  while (!settled(waiters) && Date.now() < deadline) await sleep(200);
  await sleep(SETTLE_SECONDS * 1000); // settle: every waiter past its start-up (see --settle)
  const trees = waiters.map(tree);
  for (const t of trees) for (const pid of t) remember(pid);
  // The holder's too: flock(1) runs its `sleep 3600` as a child, which ending flock alone would leave running.
  for (const pid of tree(holder)) remember(pid);
  const before = trees.map((t) => sum(t, cpuTicks));
  const wokeBefore = trees.map((t) => sum(t, wakeups));
  await sleep(SECONDS * 1000);
  const after = trees.map((t) => sum(t, cpuTicks));
  const wokeAfter = trees.map((t) => sum(t, wakeups));
  const cpu = after.map((a, i) => a - (before[i] ?? 0));
  const woke = wokeAfter.map((a, i) => a - (wokeBefore[i] ?? 0));
  const pssPer = trees.map((t) => sum(t, pss));
  const rssPer = trees.map((t) => sum(t, rss));
  const totalCpuSeconds = cpu.reduce((a, b) => a + b, 0) / TICKS;
  endStarted();
  await sleep(500);
  return {
    label,
    processesPerWaiter: median(trees.map((t) => t.length)),
    pssMiBPerWaiter: median(pssPer) / MIB,
    pssMiBMeanPerWaiter: pssPer.reduce((a, b) => a + b, 0) / pssPer.length / MIB,
    pssMiBTotal: pssPer.reduce((a, b) => a + b, 0) / MIB,
    rssMiBTotal: rssPer.reduce((a, b) => a + b, 0) / MIB,
    cpuPercentOfOneCore: (100 * totalCpuSeconds) / SECONDS,
    cpuTicksTotal: cpu.reduce((a, b) => a + b, 0),
    wakeupsTotal: woke.reduce((a, b) => a + b, 0),
    wakeupsMax: Math.max(...woke),
  };
}

const lockFile = join(work, 'flock');
const ticketCount = () => {
  try {
    const q = readdirSync(env.SEQ_TEST_STATE_DIR).find((n) => n.startsWith('q-'));
    return readdirSync(join(env.SEQ_TEST_STATE_DIR, q, 'tickets')).filter((n) => /^\d{12}-/.test(n)).length;
  } catch {
    return 0;
  }
};
const results = [];
try {
  // Through the bin: the waiters that handed the wait over have no child left (Node exited); the first
  // `slots` + 2 (3) wait in Node.
  const handedOver = (waiters) => waiters.filter((pid) => tree(pid).length === 1).length >= WAITERS - 3;
  results.push(
    await measure(
      `${WAITERS} × seq-test run (bin)`,
      [BIN, ['run', '--quiet', '--', 'sleep', '3600']],
      [BIN, ['run', '--quiet', '--', 'true']],
      () => ticketCount() >= WAITERS + 1,
      handedOver,
    ),
  );
  results.push(
    await measure(
      `${WAITERS} × node dist/bin.js run`,
      [process.execPath, [CLI, 'run', '--quiet', '--', 'sleep', '3600']],
      [process.execPath, [CLI, 'run', '--quiet', '--', 'true']],
      () => ticketCount() >= WAITERS + 1,
    ),
  );
  // flock waiters block in flock(2) at once; a second's grace is plenty for them to get there.
  results.push(
    await measure(
      `${WAITERS} × flock`,
      ['flock', [lockFile, 'sleep', '3600']],
      ['flock', [lockFile, 'true']],
      () => true,
    ),
  );
} finally {
  endStarted();
  rmSync(work, { recursive: true, force: true });
}

const table = markdownTable(
  [
    'waiters',
    'processes each',
    'PSS each (median)',
    'PSS each (mean)',
    'PSS total',
    'RSS total',
    `CPU over ${SECONDS} s (of one core)`,
    'wakeups (all / busiest waiter)',
  ],
  results.map((r) => [
    r.label,
    String(r.processesPerWaiter),
    `${r.pssMiBPerWaiter.toFixed(1)} MiB`,
    `${r.pssMiBMeanPerWaiter.toFixed(2)} MiB`,
    `${r.pssMiBTotal.toFixed(0)} MiB`,
    `${r.rssMiBTotal.toFixed(0)} MiB`,
    `${r.cpuPercentOfOneCore.toFixed(2)} % (${r.cpuTicksTotal} ticks)`,
    `${r.wakeupsTotal} / ${r.wakeupsMax}`,
  ]),
);
console.log(table);
if (args.includes('--write'))
  console.log(`written: ${writeResults('idle-waiters', { waiters: WAITERS, seconds: SECONDS, results })}`);
