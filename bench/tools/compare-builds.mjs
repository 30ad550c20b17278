#!/usr/bin/env node
// Two builds of @seq-test/core in one process, alternating round by round under the same load: the runner
// alone (`execTree({ command: ['true'] })`) and the handoff path (a prepareExec made while "waiting", then
// the time from run() to its result). For a before/after of a change on a busy machine, where two whole
// benchmark runs minutes apart differ more than the change does. Run it in both orders (A B, then B A):
// the median of paired ratios has a position bias of several percent (a build against a copy of itself
// gave up to 1.16 on a load of 25 on 2 cores).
//
//   node bench/tools/compare-builds.mjs OLD/packages/core/dist/index.js NEW/packages/core/dist/index.js [--runs 200]
import { pathToFileURL } from 'node:url';
import { nowMs, parseArgs, stats } from '../lib/harness.mjs';

const [aPath, bPath, ...rest] = process.argv.slice(2);
if (!aPath || !bPath || aPath.startsWith('--') || bPath.startsWith('--')) {
  console.error('usage: node bench/tools/compare-builds.mjs A/core/dist/index.js B/core/dist/index.js [--runs N]');
  process.exit(2);
}
const runs = parseArgs(rest).runs ?? 200;
const builds = { A: await import(pathToFileURL(aPath).href), B: await import(pathToFileURL(bPath).href) };
const samples = { A: { exec: [], handoff: [] }, B: { exec: [], handoff: [] } };

async function round(core, into) {
  let began = nowMs();
  await core.execTree({ command: ['true'] });
  into?.exec.push(nowMs() - began);
  const prepared = core.prepareExec({ command: ['true'] });
  await new Promise((resolve) => setTimeout(resolve, 5)); // the parked helper settles, as in a queue
  began = nowMs();
  await prepared.run();
  into?.handoff.push(nowMs() - began);
}

for (let i = 0; i < 5; i++) for (const name of ['A', 'B']) await round(builds[name]); // warm-up
for (let i = 0; i < runs; i++)
  for (const name of i % 2 ? ['A', 'B'] : ['B', 'A']) await round(builds[name], samples[name]);

const median = (values) => stats(values).median;
console.log(`A = ${aPath}\nB = ${bPath}\n${runs} rounds\n`);
console.log('| path | A median ms | B median ms | B/A, median of paired rounds |\n| --- | --- | --- | --- |');
for (const path of ['exec', 'handoff']) {
  const paired = samples.A[path].map((a, i) => samples.B[path][i] / a);
  console.log(
    `| ${path} | ${median(samples.A[path]).toFixed(2)} | ${median(samples.B[path]).toFixed(2)} | ${median(paired).toFixed(3)} |`,
  );
}
