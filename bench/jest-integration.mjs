#!/usr/bin/env node
// What does @seq-test/jest add to a Jest run? The example project (examples/jest: 4 test files that start
// child processes, a global setup that starts a server) under its withSeqTest() config, against the same
// suite with a plain config and --runInBand (one worker, in Jest's process: what the integration forces),
// interleaved in one run, on Jest 29 and 30. Target (docs/DESIGN): < 5 % added, as a ratio of medians.
//
//   node bench/jest-integration.mjs [--runs 15] [--warmup 2] [--quick] [--write]
//
// The plain runs leave the example's `sleep 300` behind (that is the point of the integration); the
// benchmark ends those by pid after each run, outside the timed part, and counts them.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureJest, JEST_VERSIONS } from '../test/jest/matrix/install.mjs';
import {
  compareWithPlain,
  countProcesses,
  fmt,
  leftoverTracker,
  markdownTable,
  parseArgs,
  printAddedTargets,
  ROOT,
  stats,
  timeCommand,
  writeResults,
} from './lib/harness.mjs';

const options = parseArgs();
const runs = options.runs ?? (options.quick ? 5 : 15);
const warmup = options.warmup ?? 2;
const TARGET = 1.05;

const integrated = join(ROOT, 'examples', 'jest', 'jest.config.js');
const plain = join(ROOT, 'test', 'jest', 'fixtures', 'plain.config.cjs');
if (!existsSync(join(ROOT, 'integrations', 'jest', 'dist', 'global-setup.js'))) {
  console.error('bench: build first: npx turbo run build');
  process.exit(2);
}

const leftovers = leftoverTracker();
const stateDir = mkdtempSync(join(tmpdir(), 'seq-test-bench-state-'));
chmodSync(stateDir, 0o700);
const env = { ...process.env, SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: 'bench-jest-integration', ...leftovers.env };
for (const name of ['SEQ_TEST_TOKEN', 'SEQ_TEST_DISABLE', 'EXAMPLE_STAMPS', 'EXAMPLE_SLOW_MS', 'EXAMPLE_FAIL']) {
  delete env[name];
}
env.CI = 'true';
env.FORCE_COLOR = '0';

const { leftBehind, endMarked } = leftovers;
process.on('exit', () => {
  endMarked('exit');
  rmSync(stateDir, { recursive: true, force: true });
});

const groups = [];
const versions = {};
for (const name of JEST_VERSIONS) {
  const jest = await ensureJest(name);
  versions[name] = jest.version();
  const base = [jest.bin, '--cacheDirectory', jest.cacheDir];
  const timed = (label, args) => {
    const caseName = `jest ${jest.version()} ${label}`;
    return {
      name: caseName,
      run: () => {
        const ms = timeCommand({ file: process.execPath, args, env, cwd: ROOT });
        endMarked(caseName);
        return ms;
      },
    };
  };
  groups.push({
    version: jest.version(),
    with: timed('@seq-test/jest', [...base, '--config', integrated]),
    plain: timed('plain --runInBand', [...base, '--config', plain, '--runInBand']),
  });
}

const { rows, samples } = compareWithPlain({
  name: 'jest-integration',
  tool: 'Jest',
  withLabel: '@seq-test/jest',
  plainLabel: 'plain `--runInBand`',
  groups,
  runs,
  warmup,
  leftBehind,
});
// The fixed cost the integration adds to a run, by phase, measured in fresh Node processes (stable where the
// whole-run medians above are noisy): loading @seq-test/core, taking and releasing the lock, and the two
// process-table reads of the teardown (the run's processes; ending an already-dead list).
const phases = { 'load @seq-test/core': [], 'acquireLock + release': [], 'runProcesses (teardown sweep)': [] };
const probe = `
  const t0 = performance.now();
  const core = require(${JSON.stringify(join(ROOT, 'packages', 'core', 'dist', 'index.cjs'))});
  const t1 = performance.now();
  const lock = await core.acquireLock({ command: 'bench', key: 'bench-jest-phases' });
  lock.release();
  const t2 = performance.now();
  core.runProcesses({ tokens: [lock.token.value], root: core.identityOf(process.pid) });
  const t3 = performance.now();
  process.stdout.write(JSON.stringify([t1 - t0, t2 - t1, t3 - t2]));
`;
for (let i = 0; i < Math.max(runs, 10); i++) {
  const out = spawnSync(process.execPath, ['-e', `(async () => {${probe}})()`], { env, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`phase probe failed: ${out.stderr}`);
  const [load, lock, sweep] = JSON.parse(out.stdout);
  phases['load @seq-test/core'].push(load);
  phases['acquireLock + release'].push(lock);
  phases['runProcesses (teardown sweep)'].push(sweep);
}
const phaseRows = Object.entries(phases).map(([name, s]) => ({ name, ...stats(s) }));
console.log('');
console.log(
  markdownTable(
    ['fixed cost per run (fresh Node process)', 'median ms', 'IQR ms'],
    phaseRows.map((r) => [r.name, fmt(r.median), fmt(r.iqr)]),
  ),
);
console.log(`(${countProcesses() ?? '?'} processes on the machine during the sweep)`);

console.log('');
printAddedTargets(rows, { tool: 'jest', integration: '@seq-test/jest', target: TARGET });
if (options.write) {
  const file = writeResults('jest-integration', {
    runs,
    warmup,
    target: TARGET,
    versions,
    rows,
    phases: phaseRows,
    samples,
  });
  console.log(`wrote ${file}`);
}
