// Every benchmark script in its quick mode, the smallest run that still goes through each of its parts: it
// must exit 0 and print its report. No other tier runs the benchmarks, so a change that breaks one went
// unnoticed until someone wanted its figures (bench/process-scan.mjs died with "subreaperPath is not a
// function" for a while after issue 11's API trim). No figure is checked (under test load they mean nothing)
// and nothing is written: never --write, and raw files go to a temporary SEQ_TEST_BENCH_RAW_DIR.
//
// A benchmark that cannot run here (not root, no cgroup v1 memory hierarchy, a tool missing) is skipped
// with one printed line saying why, and a peer a benchmark leaves out because its tool is missing is named
// in one line too, as is every "skipped" line a benchmark prints itself: nothing is left out silently.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, TestSandbox } from '../support/processes.js';

const BENCH = join(REPO, 'bench');
const CORE_INDEX = join(REPO, 'packages', 'core', 'dist', 'index.js');
/** A target line: its figure, then met or MISSED (which one does not matter here). */
const FIGURE = String.raw`[+-]?\d+(\.\d+)?`;

interface Smoke {
  /** The quick mode, and whatever else makes it the smallest run that still goes through every part. */
  args: string[];
  /** What its report must contain once it has run its cases (its tables and target lines). */
  report: RegExp[];
  /** What its report must not contain: a run of a case that failed (which makes its figures void). */
  never?: RegExp[];
  /** Tools it cannot run without. */
  needs?: string[];
  /** Tools whose absence it handles by leaving a peer out of its tables. */
  optional?: string[];
  /** Why it cannot run here, if that is so for another reason than a missing tool. */
  cannotRun?: () => string | undefined;
}

/** Keyed by path under bench/: every script `npm run bench` runs (bench/*.mjs) and the tools beside them. */
const SMOKES: Record<string, Smoke> = {
  'escapees.mjs': {
    args: ['--quick'],
    needs: ['perl', 'setsid', 'nohup'],
    // (Without the helper the env -i escapee is a documented miss; anything else not ended fails it.)
    report: [
      /^\| escapee \| platform \|/m,
      /^decoy .* survived every run: ✓$/m,
      /^(every escapee was ended|not ended: .+)$/m,
    ],
  },
  'exec-overhead.mjs': {
    args: ['--quick', '--runs', '3', '--warmup', '1'],
    optional: ['timeout'],
    report: [
      new RegExp(`^target: \`seq-test run -- true\` ≤ 2× \`node -e 0\` → ${FIGURE}×: (met|MISSED)$`, 'm'),
      new RegExp(`^target: the lock path \\(run − exec, medians\\) < 15 ms → ${FIGURE} ms: (met|MISSED)$`, 'm'),
    ],
  },
  'headline.mjs': {
    // Vitest, Jest (its fixture installed by npm ci on first use) and pytest with xdist (skipped, in a printed
    // line, without them); one run per batch, plain and under the integration.
    args: ['--quick', '--n', '1'],
    report: [
      /^vitest +plain +peak .*, failed 0, left \d+,/m,
      /^vitest +seq-test \(integration\) +peak .*, failed 0, left 0,/m,
    ],
    never: [/, failed [1-9]/, /^\w+ +seq-test \(integration\) .*, left [1-9]/m],
  },
  'idle-waiters.mjs': {
    args: ['--quick'],
    needs: ['flock'],
    report: [
      /^\| 5 × seq-test run \(bin\) \| \d+ \| \d+\.\d MiB \|/m,
      /^\| 5 × node dist\/bin\.js run \| \d+ \| \d+\.\d MiB \|/m,
      /^\| 5 × flock \| \d+ \| \d+\.\d MiB \|/m,
    ],
  },
  'jest-integration.mjs': {
    args: ['--quick', '--runs', '2', '--warmup', '1'],
    report: [29, 30].map(
      (major) =>
        new RegExp(
          `^target: jest ${major}\\.\\S+ with @seq-test/jest < 5 % over plain → ${FIGURE} %: (met|MISSED)$`,
          'm',
        ),
    ),
  },
  'lock.mjs': {
    args: ['--quick', '--runs', '2'],
    optional: ['flock', 'sem'],
    report: [/^## Handoff: /m, /^\| seq-test run \| /m, /^## Uncontended: /m, /^## SIGKILLed holder: /m],
  },
  'memory-admission.mjs': {
    // Vitest only, two runs at once: auto under the limit, and plain without one (what auto is compared with).
    args: ['--quick', '--n', '2', '--linger', '0', '--modes', 'auto', '--unlimited-modes', 'plain'],
    cannotRun: () =>
      process.getuid?.() !== 0
        ? 'needs root (to make a memory cgroup)'
        : existsSync('/sys/fs/cgroup/memory')
          ? undefined
          : 'needs a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory',
    report: [
      /^### vitest \(`vitest run`\), 2 runs at once, limit \d+ MiB/m,
      /^targets: auto under the limit: \d+ runs lost/m,
    ],
  },
  'process-scan.mjs': {
    args: ['--quick', '--runs', '2', '--warmup', '1'],
    needs: ['ps'],
    report: [new RegExp(`^target: finding the run among \\d+ processes < 50 ms → subtree walk ${FIGURE} ms`, 'm')],
  },
  'sampling-cadence.mjs': {
    args: ['--quick'],
    report: [/^spike: 1 runs per schedule/m, /^none \| /m, /^50 ms \| \d+ /m, /^100 ms to 2 s then 500 ms \| \d+ /m],
  },
  'vitest-plugin.mjs': {
    args: ['--quick', '--runs', '2', '--warmup', '1'],
    report: [
      new RegExp(`^target: vitest \\S+ with @seq-test/vitest < 5 % over plain → ${FIGURE} %: (met|MISSED)$`, 'm'),
    ],
  },
  'waiting-cost.mjs': {
    // A suite of 10 files; every waiter; three at once with Vitest only.
    args: ['--quick'],
    needs: ['flock'],
    report: [
      /^Vitest \+ plugin: PSS \d+\.\d MiB in \d+ process/m,
      /^flock FILE vitest run: PSS \d+\.\d MiB/m,
      /^vitest plain: peak PSS \d+\.\d MiB, .*, 0 failed$/m,
      /^vitest seq-test \(integration\): peak PSS \d+\.\d MiB, .*, 0 failed$/m,
    ],
    never: [/, [1-9]\d* failed$/m],
  },
  'tools/compare-builds.mjs': {
    // This build against itself.
    args: [CORE_INDEX, CORE_INDEX, '--runs', '3'],
    report: [
      /^\| exec \| \d+\.\d+ \| \d+\.\d+ \| \d+\.\d+ \|$/m,
      /^\| handoff \| \d+\.\d+ \| \d+\.\d+ \| \d+\.\d+ \|$/m,
    ],
  },
  'tools/probe-cost.mjs': {
    args: ['--runs', '3'],
    report: [/^\| `probeHelper\(\)` on a fresh copy .* \| \d+\.\d+ \|/m],
  },
};

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Waits (up to 10 s) for what a benchmark ended on its way out to be gone: a SIGKILL takes a moment. */
async function settle(sandbox: TestSandbox): Promise<void> {
  for (let waited = 0; waited < 10_000 && sandbox.ours().length > 0; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.runIf(process.platform === 'linux')('every benchmark, in its quick mode', () => {
  let sandbox: TestSandbox | undefined;
  afterEach(async () => {
    if (!sandbox) return;
    await settle(sandbox);
    // Whatever is still running is what the benchmark left behind: its own cleanup failed.
    expect(sandbox.cleanup(), 'processes the benchmark left behind').toBe(0);
    sandbox = undefined;
  });

  it('has a smoke run here (a new benchmark must be added to SMOKES)', () => {
    const scripts = [
      ...readdirSync(BENCH).filter((name) => name.endsWith('.mjs') && name !== 'run-all.mjs'),
      ...readdirSync(join(BENCH, 'tools'))
        .filter((name) => name.endsWith('.mjs'))
        .map((name) => `tools/${name}`),
    ];
    expect(Object.keys(SMOKES).sort()).toEqual(scripts.sort());
  });

  for (const [script, smoke] of Object.entries(SMOKES)) {
    it(`bench/${script} ${smoke.args.join(' ')}: exits 0 and prints its report`, async (context) => {
      const missing = (smoke.needs ?? []).filter((tool) => !onPath(tool));
      const reason = missing.length > 0 ? `no ${missing.join(', ')} on PATH` : smoke.cannotRun?.();
      if (reason) {
        console.log(`SKIPPED: bench/${script}: ${reason}`);
        context.skip(reason);
      }
      for (const tool of (smoke.optional ?? []).filter((t) => !onPath(t)))
        console.log(`bench/${script} runs without its ${tool} row: no ${tool} on PATH`);
      sandbox = new TestSandbox();
      // This file runs inside Vitest: none of its variables may reach the runners the benchmark starts.
      const outer = Object.fromEntries(
        Object.keys(process.env)
          .filter((k) => k.startsWith('VITEST'))
          .map((k) => [k, undefined]),
      );
      const result = await sandbox.start([join(BENCH, script), ...smoke.args], {
        file: process.execPath,
        cwd: REPO,
        env: { ...outer, SEQ_TEST_BENCH_RAW_DIR: join(sandbox.dir, 'raw') },
      }).finished;
      const output = `${result.stdout}\n${result.stderr}`;
      for (const line of output.split('\n').filter((l) => /\bskipped\b/i.test(l)))
        console.log(`bench/${script}: ${line.trim()}`);
      expect(result.code, output).toBe(0);
      for (const line of smoke.report) expect(result.stdout, output).toMatch(line);
      for (const line of [/\bNaN\b/, ...(smoke.never ?? [])]) expect(result.stdout, output).not.toMatch(line);
    }, 600_000); // a bound for a machine under load: the longest took 2.5 min at load 5-10
  }
});
