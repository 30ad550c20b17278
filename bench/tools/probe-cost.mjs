#!/usr/bin/env node
// What the once-per-process helper handshake costs `seq-test exec -- true`. In one process, interleaved
// round by round: `probeHelper()` as a run calls it (read the ELF header, an exclusive temp file, a token,
// spawnSync(helper, ['--handshake']), the verdict), each round on a fresh copy of the helper so the
// per-process cache never answers; the bare `spawnSync(helper, ['--handshake'])`; and `spawnSync('true')`
// for scale. Then whole processes, interleaved: `seq-test exec -- true` as shipped (probe + helper) and
// with SEQ_TEST_NO_SUBREAPER=1 (no probe, no helper), for the probe's share of a whole call.
//
//   node bench/tools/probe-cost.mjs [--runs 200]      (in-process rounds; whole-process rounds: a fifth)
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, fmt, HELPER, markdownTable, measureInterleaved, nowMs, parseArgs, ROOT, stats } from '../lib/harness.mjs';

const runs = parseArgs().runs ?? 200;
const processRuns = Math.max(10, Math.ceil(runs / 5));
const INTERNAL = join(ROOT, 'packages', 'core', 'dist', 'internal.js');
if (!existsSync(INTERNAL) || !existsSync(CLI) || !existsSync(HELPER)) {
  console.error(`bench: build first (npm run build): needs ${INTERNAL}, ${CLI} and ${HELPER}`);
  process.exit(2);
}
const { probeHelper } = await import(pathToFileURL(INTERNAL).href);
const loadAtStart = loadavg()[0];
const scratch = mkdtempSync(join(tmpdir(), 'seq-test-bench-probe-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

let copies = 0;
function freshCopy() {
  const path = join(scratch, `helper-${copies++}`);
  copyFileSync(HELPER, path);
  chmodSync(path, 0o755);
  return path;
}

const inProcess = { probe: [], handshake: [], true: [] };
const rounds = {
  probe: () => {
    const path = freshCopy(); // not timed: a cold cache for probeHelper
    const began = nowMs();
    const problem = probeHelper(path);
    const took = nowMs() - began;
    if (problem) throw new Error(`the helper failed its handshake: ${problem}`);
    rmSync(path);
    return took;
  },
  handshake: () => {
    const began = nowMs();
    const result = spawnSync(HELPER, ['--handshake'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const took = nowMs() - began;
    if (result.status !== 0) throw new Error(`--handshake exited ${result.status}`);
    return took;
  },
  true: () => {
    const began = nowMs();
    spawnSync('true');
    return nowMs() - began;
  },
};
const order = Object.keys(rounds);
for (let i = 0; i < 10; i++) for (const name of order) rounds[name]();
for (let i = 0; i < runs; i++)
  for (let k = 0; k < order.length; k++) {
    const name = order[(i + k) % order.length];
    inProcess[name].push(rounds[name]());
  }

const env = { ...process.env, SEQ_TEST_STATE_DIR: scratch, SEQ_TEST_KEY: 'bench-probe-cost' };
for (const key of ['SEQ_TEST_TOKEN', 'SEQ_TEST_NO_SUBREAPER', 'SEQ_TEST_SUBREAPER', 'SEQ_TEST_DISABLE'])
  delete env[key];
const whole = measureInterleaved(
  [
    {
      name: '`seq-test exec -- true` (probe + helper)',
      file: process.execPath,
      args: [CLI, 'exec', '--', 'true'],
      env,
    },
    {
      name: '`seq-test exec -- true`, SEQ_TEST_NO_SUBREAPER=1 (neither)',
      file: process.execPath,
      args: [CLI, 'exec', '--', 'true'],
      env: { ...env, SEQ_TEST_NO_SUBREAPER: '1' },
    },
  ],
  { runs: processRuns, warmup: 3 },
);

const row = (name, samples) => {
  const s = stats(samples);
  return [name, fmt(s.median, 2), fmt(s.iqr, 2), fmt(s.min, 2)];
};
console.log(
  `${runs} in-process rounds, ${processRuns} whole-process rounds; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end\n`,
);
console.log(
  markdownTable(
    ['in one process', 'median ms', 'IQR ms', 'min ms'],
    [
      row('`probeHelper()` on a fresh copy (what one process pays once)', inProcess.probe),
      row("`spawnSync(helper, ['--handshake'])` alone", inProcess.handshake),
      row("`spawnSync('true')`", inProcess.true),
    ],
  ),
);
console.log();
console.log(
  markdownTable(
    ['whole process', 'median ms', 'IQR ms', 'min ms'],
    Object.entries(whole).map(([name, samples]) => row(name, samples)),
  ),
);
