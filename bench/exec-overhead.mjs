#!/usr/bin/env node
// What does `seq-test exec -- true` cost, compared with starting Node at all (`node -e 0`) and with the
// coreutils way of running a command under supervision (`timeout 10 true`)? Target (docs/DESIGN): at most
// 2× `node -e 0`, as a ratio of medians measured in the same run.
//
//   node bench/exec-overhead.mjs [--runs 30] [--warmup 3] [--write]
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CLI,
  CLI_INDEX,
  CORE,
  fmt,
  fmtRatio,
  helperPresent,
  markdownTable,
  measureInterleaved,
  nowMs,
  parseArgs,
  ratio,
  stats,
  waitForBuild,
  writeResults,
} from './lib/harness.mjs';

const options = parseArgs();
const runs = options.runs ?? (options.quick ? 10 : 30);
const warmup = options.warmup ?? 3;
const TARGET = 2;
const LOCK_TARGET_MS = 15;

if (!existsSync(CLI) || !existsSync(CORE)) {
  console.error('bench: build first: npx turbo run build');
  process.exit(2);
}
if (process.platform === 'linux' && !(await waitForBuild(60_000))) {
  console.error(
    'bench: the subreaper helper is missing (packages/core/dist/seq-test-subreaper): rows "with helper" would be wrong',
  );
}
const trueBin = spawnSync('/bin/sh', ['-c', 'command -v true'], { encoding: 'utf8' }).stdout.trim();
const timeoutBin = spawnSync('/bin/sh', ['-c', 'command -v timeout'], { encoding: 'utf8' }).stdout.trim();
const node = process.execPath;
// A token inherited from an outer run would make `run` nested (no queueing): measure a top-level call.
const baseEnv = { ...process.env };
delete baseEnv.SEQ_TEST_TOKEN;
delete baseEnv.SEQ_TEST_DISABLE;
delete baseEnv.SEQ_TEST_NO_SUBREAPER;
const stateDir = mkdtempSync(join(tmpdir(), 'seq-test-bench-state-'));
chmodSync(stateDir, 0o700);
process.on('exit', () => rmSync(stateDir, { recursive: true, force: true }));
const env = { ...baseEnv, SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: 'bench-exec-overhead' };
const withoutHelper = { ...env, SEQ_TEST_NO_SUBREAPER: '1' };

const cases = [
  { name: 'seq-test run -- true', file: node, args: [CLI, 'run', '--quiet', '--', 'true'], env, optional: 'run' },
  { name: 'seq-test exec -- true', file: node, args: [CLI, 'exec', '--', 'true'], env },
  {
    name: 'seq-test exec -- true (no subreaper helper)',
    file: node,
    args: [CLI, 'exec', '--', 'true'],
    env: withoutHelper,
  },
  // Diagnostic: the same CLI entry point, but exiting the moment main() resolves. The gap to the first row is
  // time the process spends alive after the run is over (timers left pending; see bench/README.md).
  {
    name: 'seq-test exec -- true, exit as soon as main() resolves',
    file: node,
    env,
    args: [
      '--input-type=module',
      '-e',
      `import { main } from ${JSON.stringify(pathToFileURL(CLI_INDEX).href)}; process.exit(await main(['node', 'seq-test', 'exec', '--', 'true']));`,
    ],
  },
  { name: 'seq-test --version (CLI load only)', file: node, args: [CLI, '--version'], env },
  { name: 'node -e 0', file: node, args: ['-e', '0'], env },
  ...(timeoutBin ? [{ name: 'timeout 10 true', file: timeoutBin, args: ['10', 'true'], env }] : []),
  { name: '/bin/true', file: '/bin/true', env },
];

// `seq-test run` arrived after `exec`; measure it when this build has it.
const help = spawnSync(node, [CLI, '--help'], { encoding: 'utf8', env });
for (let i = cases.length - 1; i >= 0; i--) {
  const optional = cases[i].optional;
  if (optional && !new RegExp(`^\\s+${optional}\\b`, 'm').test(help.stdout)) cases.splice(i, 1);
}

console.log(`exec-overhead: ${cases.length} cases × ${runs} runs (after ${warmup} warm-up rounds), interleaved`);
const samples = measureInterleaved(cases, {
  runs,
  warmup,
  onRound: (done, total) => {
    if (done % 10 === 0 || done === total) process.stderr.write(`  round ${done}/${total}\n`);
  },
});

// A rebuild by someone else during the measurement would silently switch modes: say so.
const helperThroughout = process.platform !== 'linux' || helperPresent();
if (!helperThroughout)
  console.error('bench: the subreaper helper disappeared during the run; repeat when no build is running');
const peer = samples['node -e 0'];
const rows = cases.map((c) => {
  const s = stats(samples[c.name]);
  const r = ratio(samples[c.name], peer);
  return { name: c.name, ...s, ratioOfMedians: r.ofMedians, pairedRatio: r.pairedMedian };
});

// The same exec path inside one Node process: what the runner itself costs once Node is up.
const core = await import(pathToFileURL(CORE).href);
const inProcess = { execTree: [], spawnSync: [], ...(core.acquireLock ? { acquireLock: [] } : {}) };
for (let i = -warmup; i < runs; i++) {
  let begun = nowMs();
  if (core.acquireLock) {
    const lock = await core.acquireLock({ key: 'bench-exec-overhead-in-process', command: 'true', env });
    lock.release();
    if (i >= 0) inProcess.acquireLock.push(nowMs() - begun);
  }
  begun = nowMs();
  const result = await core.execTree({ command: ['true'] });
  if (result.exitCode !== 0) throw new Error(`execTree(['true']) exited ${result.exitCode}`);
  if (i >= 0) inProcess.execTree.push(nowMs() - begun);
  begun = nowMs();
  spawnSync(trueBin || '/bin/true');
  if (i >= 0) inProcess.spawnSync.push(nowMs() - begun);
}
const IN_PROCESS_LABELS = {
  execTree: "`execTree({ command: ['true'] })` (the runner, no CLI)",
  spawnSync: "`spawnSync('true')`",
  acquireLock: '`acquireLock()` + `release()` (the lock path alone, uncontended)',
};
const inRows = Object.entries(inProcess).map(([name, s]) => ({ name, ...stats(s) }));

const main =
  rows.find((r) => r.name === 'seq-test run -- true') ?? rows.find((r) => r.name === 'seq-test exec -- true');
const met = main.ratioOfMedians <= TARGET;
const runRow = rows.find((r) => r.name === 'seq-test run -- true');
const execRow = rows.find((r) => r.name === 'seq-test exec -- true');
const lockMs = runRow ? runRow.median - execRow.median : undefined;
console.log('');
console.log(
  markdownTable(
    [
      'command',
      'median ms',
      'IQR ms',
      'min ms',
      'ratio to `node -e 0` (of medians)',
      'ratio (median of paired rounds)',
    ],
    rows.map((r) => [
      `\`${r.name}\``,
      fmt(r.median),
      fmt(r.iqr),
      fmt(r.min),
      fmtRatio(r.ratioOfMedians),
      fmtRatio(r.pairedRatio),
    ]),
  ),
);
console.log('');
console.log(
  markdownTable(
    ['inside one Node process', 'median ms', 'IQR ms'],
    inRows.map((r) => [IN_PROCESS_LABELS[r.name] ?? r.name, fmt(r.median), fmt(r.iqr)]),
  ),
);
console.log('');
console.log(
  `target: \`${main.name}\` ≤ ${TARGET}× \`node -e 0\` → ${fmtRatio(main.ratioOfMedians)}: ${met ? 'met' : 'MISSED'}`,
);
if (lockMs !== undefined)
  console.log(
    `target: the lock path (run − exec, medians) < ${LOCK_TARGET_MS} ms → ${fmt(lockMs)} ms: ${lockMs < LOCK_TARGET_MS ? 'met' : 'MISSED'}`,
  );

if (options.write) {
  const file = writeResults('exec-overhead', {
    runs,
    warmup,
    target: TARGET,
    met,
    lockMs,
    lockTargetMs: LOCK_TARGET_MS,
    rows,
    inProcess: inRows,
    samples,
  });
  console.log(`wrote ${file}`);
}
