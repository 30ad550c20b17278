#!/usr/bin/env node
// What does @seq-test/vitest add to a Vitest run? The example project (examples/vitest: 4 test files, three
// of which start child processes) under its seqTest() config, against the same suite with a plain
// single-worker config (maxWorkers: 1, fileParallelism: false: what the plugin forces), interleaved in one
// run. Default: the repo's Vitest 4; `--matrix` adds 3.0, 3.2 and 5.1 (installed by
// test/vitest/matrix/install.mjs). Target (docs/DESIGN): < 5 % added, as a ratio of medians.
//
//   node bench/vitest-plugin.mjs [--runs 15] [--warmup 2] [--quick] [--matrix] [--write]
//
// The plain runs leave the example's `sleep 300` behind (that is the point of the plugin); the benchmark
// ends those by pid after each run, outside the timed part, and counts them.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMatrix } from '../test/vitest/matrix/install.mjs';
import {
  compareWithPlain,
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

const argv = process.argv.slice(2);
const withMatrix = argv.includes('--matrix');
const options = parseArgs(argv.filter((a) => a !== '--matrix'));
const runs = options.runs ?? (options.quick ? 5 : 15);
const warmup = options.warmup ?? 2;
const TARGET = 1.05;

const EXAMPLE = join(ROOT, 'examples', 'vitest');
const PLUGIN = join(ROOT, 'integrations', 'vitest');
if (!existsSync(join(PLUGIN, 'dist', 'global-setup.js'))) {
  console.error('bench: build first: npx turbo run build');
  process.exit(2);
}

const leftovers = leftoverTracker();
const scratch = mkdtempSync(join(tmpdir(), 'seq-test-bench-vitest-'));
const stateDir = join(scratch, 'state');
mkdirSync(stateDir, { mode: 0o700 });
chmodSync(stateDir, 0o700);
const env = { ...process.env, SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: 'bench-vitest-plugin', ...leftovers.env };
for (const name of Object.keys(env)) {
  if (name.startsWith('VITEST') || name.startsWith('EXAMPLE_') || name.startsWith('SEQ_TEST_TOKEN')) delete env[name];
}
delete env.SEQ_TEST_DISABLE;
env.CI = 'true';
env.NO_COLOR = '1';

const { leftBehind, endMarked } = leftovers;
process.on('exit', () => {
  endMarked('exit');
  rmSync(scratch, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));

// The same suite and settings as examples/vitest/vitest.config.ts, minus the plugin, one worker.
const PLAIN_CONFIG = `import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/stamps.ts'],
    testTimeout: 30_000,
    maxWorkers: 1,
    fileParallelism: false,
  },
});
`;

/** A private copy of the example wired to one Vitest install (as the e2e tests do). */
function project(install) {
  const dir = join(scratch, `example-${install.version}`);
  mkdirSync(join(dir, 'node_modules', '@seq-test'), { recursive: true });
  for (const entry of ['package.json', 'vitest.config.ts', 'src', 'tests']) {
    cpSync(join(EXAMPLE, entry), join(dir, entry), { recursive: true });
  }
  writeFileSync(join(dir, 'vitest.plain.config.ts'), PLAIN_CONFIG);
  symlinkSync(install.vitest, join(dir, 'node_modules', 'vitest'));
  symlinkSync(PLUGIN, join(dir, 'node_modules', '@seq-test', 'vitest'));
  return dir;
}

const installs = withMatrix
  ? Object.values(ensureMatrix())
  : [
      {
        vitest: join(ROOT, 'node_modules', 'vitest'),
        node: process.execPath,
        version: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'vitest', 'package.json'), 'utf8')).version,
      },
    ];

const groups = [];
for (const install of installs) {
  const dir = project(install);
  const bin = join(install.vitest, 'vitest.mjs');
  const timed = (label, args) => {
    const caseName = `vitest ${install.version} ${label}`;
    return {
      name: caseName,
      run: () => {
        const ms = timeCommand({ file: install.node, args, env, cwd: dir });
        endMarked(caseName);
        return ms;
      },
    };
  };
  groups.push({
    version: install.version,
    extra: { node: install.node === process.execPath ? process.version : 'fetched Node 24' },
    with: timed('@seq-test/vitest', [bin, 'run']),
    plain: timed('plain single worker', [bin, 'run', '--config', 'vitest.plain.config.ts']),
  });
}

const { rows, samples } = compareWithPlain({
  name: 'vitest-plugin',
  tool: 'Vitest',
  withLabel: '@seq-test/vitest',
  plainLabel: 'plain single worker',
  groups,
  runs,
  warmup,
  leftBehind,
});
// The fixed cost per run, by phase, in fresh Node processes (stable where whole runs are not): loading the
// plugin (and @seq-test/core), an uncontended acquireLock + release, and one sweep of the process table
// reading every environment (the plugin sweeps twice at the end of a run: find leftovers, confirm none).
const PHASE_SCRIPT = `
const t0 = performance.now();
await import(${JSON.stringify(join(PLUGIN, 'dist', 'index.js'))});
const core = await import('@seq-test/core/internal');
const t1 = performance.now();
const handle = await core.acquireLock({ command: 'bench phase' });
handle.release();
const t2 = performance.now();
const table = core.processTable();
let n = 0;
for (const info of table.list()) n += core.parseChain(table.envValue(info.pid, core.TOKEN_ENV)).length;
const t3 = performance.now();
process.stdout.write(JSON.stringify({ load: t1 - t0, lock: t2 - t1, sweep: t3 - t2, processes: table.list().length }));
`;
const phases = { load: [], lock: [], sweep: [] };
let processes = 0;
for (let i = 0; i < Math.max(runs, 10); i++) {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', PHASE_SCRIPT], {
    env,
    cwd: PLUGIN,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`phase script failed: ${result.stderr}`);
  const sample = JSON.parse(result.stdout);
  for (const key of Object.keys(phases)) phases[key].push(sample[key]);
  processes = sample.processes;
}
const phaseRows = [
  ['load `@seq-test/vitest` (with `@seq-test/core`)', stats(phases.load)],
  ['`acquireLock` + `release` (uncontended)', stats(phases.lock)],
  [`one process-table sweep (~${processes} processes)`, stats(phases.sweep)],
];

console.log('');
console.log(
  markdownTable(
    ['fixed cost per run', 'median ms', 'IQR ms'],
    phaseRows.map(([label, s]) => [label, fmt(s.median), fmt(s.iqr)]),
  ),
);
console.log('');
printAddedTargets(rows, { tool: 'vitest', integration: '@seq-test/vitest', target: TARGET });
if (options.write) {
  const file = writeResults('vitest-plugin', { runs, warmup, target: TARGET, rows, samples, phases });
  console.log(`wrote ${file}`);
}
