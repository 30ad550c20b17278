// The lock: handoff between queued jobs (seq-test run vs flock(1) vs GNU parallel's sem), what the lock adds
// to one uncontended call, and how fast a SIGKILLed holder's slot passes on.
//
//   node bench/lock.mjs [--runs N] [--quick] [--write] [--handoff-only [--peers seq-test]]
//
// --handoff-only stops after the handoff table (not with --write); --peers <prefix> keeps the locks whose
// name starts with it (`--peers seq-test`: both seq-test rows, to check a change to the wait quickly).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  CLI,
  CLI_INDEX,
  CORE,
  childrenCpuMs,
  cleanupOnExit,
  fmt,
  fmtRatio,
  forget,
  markdownTable,
  measureInterleaved,
  nowMs,
  parseArgs,
  ROOT,
  ratio,
  remember,
  stats,
  timeCommand,
  writeResults,
} from './lib/harness.mjs';

const ownArgs = process.argv.slice(2);
const handoffOnly = ownArgs.includes('--handoff-only');
const peerPrefix = ownArgs.includes('--peers') ? ownArgs[ownArgs.indexOf('--peers') + 1] : undefined;
const options = parseArgs(
  ownArgs.filter((a, i) => a !== '--handoff-only' && a !== '--peers' && ownArgs[i - 1] !== '--peers'),
);
if (handoffOnly && options.write) {
  console.error('bench: --handoff-only measures part of the benchmark; it cannot --write its results');
  process.exit(2);
}
cleanupOnExit();
const work = mkdtempSync(join(tmpdir(), 'seq-test-bench-lock-'));
const env = { ...process.env, SEQ_TEST_STATE_DIR: join(work, 'state'), SEQ_TEST_KEY: `bench-${process.pid}` };
delete env.SEQ_TEST_TOKEN;
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// --- handoff ------------------------------------------------------------------------------------------
const JOBS = options.quick ? 10 : 20;
// Every job is the same script file; the first one to run holds the queue closed until every contender has
// surely joined it (the gate), so the gaps measure handoff between queued jobs, not process start-up.
const jobFile = (log, gate) => {
  const file = join(work, `job-${log.split('/').pop()}.sh`);
  writeFileSync(
    file,
    `while [ ! -e ${gate} ]; do sleep 0.01; done\necho "S $(date +%s%N)" >> ${log}\nsleep 0.05\necho "E $(date +%s%N)" >> ${log}\n`,
  );
  return file;
};

const launchers = {
  'seq-test run': (job) => [process.execPath, [CLI, 'run', '--quiet', '--', 'bash', job]],
  // Through the npm bin, as a user's shell starts it: on Linux with the helper, the runs far from the head
  // wait in the launcher and start Node near it (docs/process-tree.md, "Waiting in the launcher").
  'seq-test run (bin)': (job) => [
    join(ROOT, 'packages', 'cli', 'bin', 'seq-test'),
    ['run', '--quiet', '--', 'bash', job],
  ],
  'flock(1)': (job) => ['flock', [join(work, 'flock.lock'), 'bash', job]],
  'sem --fg': (job) => ['sem', ['--will-cite', '--fg', '--id', `bench-${process.pid}`, '-j1', 'bash', job]],
};

const overlaps = {};

async function handoff(name) {
  const log = join(work, `${name.replace(/\W+/g, '-')}.log`);
  const gate = `${log}.gate`;
  rmSync(log, { force: true });
  rmSync(gate, { force: true });
  const [file, args] = launchers[name](jobFile(log, gate));
  const children = [];
  for (let i = 0; i < JOBS; i++) {
    const child = spawn(file, args, { env, stdio: 'ignore' });
    remember(child.pid);
    children.push(
      new Promise((resolve) =>
        child.on('exit', (code) => {
          forget(child.pid);
          resolve(code);
        }),
      ),
    );
  }
  await sleep(JOBS * 400); // generous: start-up of every contender on a loaded 2-core machine
  writeFileSync(gate, '');
  const codes = await Promise.all(children);
  if (codes.some((c) => c !== 0)) throw new Error(`${name}: a job failed (${codes.join(',')})`);
  const stamps = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  const gaps = [];
  let open = 0;
  for (let i = 0; i < stamps.length; i++) {
    const [kind, at] = stamps[i];
    open += kind === 'S' ? 1 : -1;
    if (open > 1) overlaps[name] = (overlaps[name] ?? 0) + 1;
    const next = stamps[i + 1];
    if (kind === 'E' && open === 0 && next?.[0] === 'S') gaps.push(Number(BigInt(next[1]) - BigInt(at)) / 1e6);
  }
  return gaps;
}

const handoffRounds = options.runs ?? (options.quick ? 2 : 5);
const peers = Object.keys(launchers)
  .filter((name) => name.startsWith('seq-test run') || have(name.split(/[ (]/)[0]))
  .filter((name) => peerPrefix === undefined || name.startsWith(peerPrefix));
const handoffGaps = Object.fromEntries(peers.map((p) => [p, []]));
const roundMeans = Object.fromEntries(peers.map((p) => [p, []]));
for (let round = 0; round < handoffRounds; round++) {
  for (const name of peers) {
    const gaps = await handoff(name);
    handoffGaps[name].push(...gaps);
    roundMeans[name].push(gaps.reduce((a, b) => a + b, 0) / gaps.length);
  }
}
console.log(
  `\n## Handoff: ${JOBS} queued \`sleep 0.05\` jobs, gap from one job's end to the next one's start (${handoffRounds} rounds)\n`,
);
console.log(
  markdownTable(
    ['lock', 'mean gap (ms), median of rounds', 'median gap (ms)', 'p75 (ms)', 'max (ms)', 'overlapping starts'],
    peers.map((p) => {
      const s = stats(handoffGaps[p]);
      return [p, fmt(stats(roundMeans[p]).median), fmt(s.median), fmt(s.q3), fmt(s.max), String(overlaps[p] ?? 0)];
    }),
  ),
);
if (handoffOnly) {
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

// --- uncontended cost ---------------------------------------------------------------------------------
// Two whole Node processes differ by ±15 ms of wall time from round to round on this machine, so many rounds,
// and their CPU time (user + system, summed over all rounds) as the steadier figure.
const runs = options.runs ?? (options.quick ? 8 : 40);
const cpuMs = { run: 0, exec: 0 };
const timedWithCpu = (name, args) => ({
  name,
  run: () => {
    const cpuBefore = childrenCpuMs();
    const ms = timeCommand({ file: process.execPath, args, env });
    cpuMs[name.includes(' run ') ? 'run' : 'exec'] += childrenCpuMs() - cpuBefore;
    return ms;
  },
});
for (let i = 0; i < 2; i++)
  for (const args of [
    [CLI, 'run', '--quiet', '--', 'true'],
    [CLI, 'exec', '--', 'true'],
  ])
    timeCommand({ file: process.execPath, args, env }); // warm-up: file caches, not counted
const costs = measureInterleaved(
  [
    timedWithCpu('seq-test run -- true', [CLI, 'run', '--quiet', '--', 'true']),
    timedWithCpu('seq-test exec -- true', [CLI, 'exec', '--', 'true']),
  ],
  { runs, warmup: 0 },
);
const run = stats(costs['seq-test run -- true']);
const exec = stats(costs['seq-test exec -- true']);
const cpu = { run: cpuMs.run / runs, exec: cpuMs.exec / runs };
console.log(`\n## Uncontended: what the lock adds (${runs} interleaved runs each)\n`);
console.log(
  markdownTable(
    ['command', 'wall, median (ms)', 'wall, IQR (ms)', 'CPU, mean (ms)'],
    [
      ['seq-test run -- true', fmt(run.median), fmt(run.iqr), fmt(cpu.run)],
      ['seq-test exec -- true', fmt(exec.median), fmt(exec.iqr), fmt(cpu.exec)],
    ],
  ),
);
const pairedExtra = stats(costs['seq-test run -- true'].map((v, i) => v - costs['seq-test exec -- true'][i])).median;
// The lock path alone inside one warm Node process: the part of the difference that is the lock's work.
const core = await import(pathToFileURL(CORE).href);
const inProcessSamples = [];
for (let i = -3; i < 50; i++) {
  const begun = nowMs();
  const lock = await core.acquireLock({ key: `bench-lock-in-process-${process.pid}`, command: 'true', env });
  lock.release();
  if (i >= 0) inProcessSamples.push(nowMs() - begun);
}
const inProcess = stats(inProcessSamples);
// The CLI's main() for `run` and for `exec`, each timed inside a fresh Node process once the modules are
// loaded: the cold cost of the lock path (code that runs for the first time) without the ±15 ms of
// starting a process.
const coldMain = { run: [], exec: [] };
const mainScript = (argv) =>
  `import { main } from ${JSON.stringify(pathToFileURL(CLI_INDEX).href)}; const t = performance.now(); const code = await main(${JSON.stringify(['node', 'seq-test', ...argv])}); process.stdout.write(String(performance.now() - t)); process.exitCode = code;`;
for (let i = 0; i < runs; i++) {
  for (const [name, argv] of [
    ['run', ['run', '--quiet', '--', 'true']],
    ['exec', ['exec', '--', 'true']],
  ]) {
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', mainScript(argv)], { env, encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`main(${argv.join(' ')}) exited ${out.status}: ${out.stderr}`);
    coldMain[name].push(Number(out.stdout));
  }
}
const cold = { run: stats(coldMain.run), exec: stats(coldMain.exec) };
console.log(
  `\nlock adds ${fmt(cold.run.median - cold.exec.median)} ms in main() of a fresh process (medians: run ${fmt(cold.run.median)}, exec ${fmt(cold.exec.median)} ms); ${fmt(cpu.run - cpu.exec)} ms of CPU time (means); wall time ${fmt(run.median - exec.median)} ms (difference of medians; median of paired differences ${fmt(pairedExtra)} ms; ratio ${fmtRatio(ratio(costs['seq-test run -- true'], costs['seq-test exec -- true']).ofMedians)}); acquireLock() + release() in one warm process: ${fmt(inProcess.median, 2)} ms (IQR ${fmt(inProcess.iqr, 2)}). Target < 15 ms.`,
);

// --- SIGKILLed holder ---------------------------------------------------------------------------------
const killRounds = options.quick ? 3 : 10;
const detection = [];
for (let round = 0; round < killRounds; round++) {
  const stamp = join(work, `next-${round}`);
  const holder = spawn(process.execPath, [CLI, 'run', '--quiet', '--', 'sleep', '300'], { env, stdio: 'ignore' });
  remember(holder.pid);
  await sleep(400);
  const waiter = spawn(process.execPath, [CLI, 'run', '--quiet', '--', 'bash', '-c', `date +%s%N > ${stamp}`], {
    env,
    stdio: 'ignore',
  });
  remember(waiter.pid);
  await sleep(600);
  const killedAtNs = BigInt(Date.now()) * 1_000_000n; // wall clock, comparable with `date +%s%N`
  holder.kill('SIGKILL');
  await new Promise((resolve) => waiter.on('exit', resolve));
  forget(holder.pid);
  forget(waiter.pid);
  if (!existsSync(stamp)) throw new Error('the waiter never ran');
  detection.push(Number(BigInt(readFileSync(stamp, 'utf8').trim()) - killedAtNs) / 1e6);
}
const d = stats(detection);
console.log(`\n## SIGKILLed holder: from the kill to the next job's first instruction (${killRounds} rounds)\n`);
console.log(markdownTable(['median (ms)', 'min (ms)', 'max (ms)'], [[fmt(d.median), fmt(d.min), fmt(d.max)]]));
console.log("\nTarget < 500 ms. Includes reaping the dead run's `sleep` (SIGTERM) and starting `bash`.");

if (options.write) {
  console.log(
    `\nwrote ${writeResults('lock', { handoff: Object.fromEntries(peers.map((p) => [p, { gapsMs: stats(handoffGaps[p]), roundMeansMs: roundMeans[p] }])), uncontended: { run, exec, cpuMeanMs: cpu, coldMainMs: cold, pairedExtraMs: pairedExtra, inProcessAcquireReleaseMs: inProcess }, sigkillDetectionMs: d })}`,
  );
}
rmSync(work, { recursive: true, force: true });
