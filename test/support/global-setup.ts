// Runs once per test tier before its files: finds the Python interpreters the tier will use, prints them
// (and, in one line, any Python tests the tier skips and why), and hands the list to the test files
// (inject('pythons')), so no file probes interpreters again or hard-codes where they live.
import type { TestProject } from 'vitest/node';
import {
  BRIDGE_MIN_PYTHON,
  describePython,
  discoverPythons,
  firstOnPath,
  type Python,
  pytestOnPath,
  supportedByBridge,
} from './python.js';
import { available, OPTIONAL_TOOLS } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Every usable interpreter found for this tier (PATH only in the default tier). */
    pythons: Python[];
    /** The default tier's Python: the first one on PATH with pytest; null when there is none. */
    pytestOnPath: Python | null;
    /** The first supported Python on PATH, pytest or not; null when there is none. */
    pythonOnPath: Python | null;
  }
}

/**
 * What skips in the default tier without a Python >= 3.8 that has pytest on PATH (the tests use the injected
 * `pytestOnPath`), and without any Python >= 3.8 on PATH (`pythonOnPath`), by project. Keep in step with the
 * tests' runIf/skipIf: this is what the tier prints instead of skipping silently.
 */
const NEEDS_PYTEST =
  "test/pytest, test/conformance, test/memory/pytest-auto, the Python lock's cases in " +
  'test/lock/hardening.test.ts and test/lock/inherited-token.test.ts, seq_subprocess in ' +
  'test/exec/recycled-pid.test.ts, and pytest on the project test/init/init.test.ts initialises';
const NEEDS_PYTHON = {
  core: 'two tests of packages/core/test/memory-measure.test.ts (Pss of a forked Python tree, the peak recorder after a fall)',
  e2e: "the pytest bridge's stdlib-only unit tests (test/pytest/python-suites.test.ts)",
};

// Vitest loads this file once per project, each time as a new module: what the projects of one run share
// lives on the process.
interface Shared {
  printed: Set<string>;
  found: Map<boolean, Promise<Python[]>>;
}
const SHARED = Symbol.for('seq-test.global-setup');
const processWide = globalThis as unknown as Record<symbol, Shared | undefined>;
const shared: Shared = processWide[SHARED] ?? { printed: new Set(), found: new Map() };
processWide[SHARED] = shared;
const { printed, found } = shared;
/** The interpreters, probed once per process however many projects ask. */
function discovered(everywhere: boolean): Promise<Python[]> {
  let pythons = found.get(everywhere);
  if (!pythons) {
    pythons = discoverPythons({ everywhere });
    found.set(everywhere, pythons);
  }
  return pythons;
}

export default async function setup(project: TestProject): Promise<void> {
  const matrix = project.name === 'matrix';
  const pythons = await discovered(matrix);
  const chosen = pytestOnPath(pythons) ?? null;
  project.provide('pythons', pythons);
  project.provide('pytestOnPath', chosen);
  const plain = firstOnPath(pythons) ?? null;
  project.provide('pythonOnPath', plain);
  const out = (line: string) => {
    // Several projects of one tier share this process: each line once.
    if (printed.has(line)) return;
    printed.add(line);
    process.stdout.write(`[${project.name}] ${line}\n`);
  };
  const minimum = BRIDGE_MIN_PYTHON.join('.');
  if (project.name === 'core') {
    // The unit tests need no interpreter list: only what they skip.
    if (!plain) out(`SKIPPED: ${NEEDS_PYTHON.core}: no Python >= ${minimum} on PATH`);
    return;
  }
  out(
    pythons.length
      ? `Python interpreters found (${matrix ? 'PATH, pyenv root, /usr/bin' : 'PATH'}):\n${pythons.map((p) => `  ${describePython(p)}`).join('\n')}`
      : 'no Python interpreter found on PATH',
  );
  if (chosen) out(`Python end-to-end tests use ${describePython(chosen)}`);
  else
    out(
      `SKIPPED: the Python end-to-end tests (${NEEDS_PYTEST}): no Python >= ${minimum} ` +
        'with pytest on PATH (install pytest: apt-get install python3-pytest, or pip install pytest)',
    );
  for (const [tool, { tests, install }] of Object.entries(OPTIONAL_TOOLS)) {
    if (!available(tool as keyof typeof OPTIONAL_TOOLS)) out(`SKIPPED: ${tests}: no ${tool} on PATH (${install})`);
  }
  if (!matrix)
    out(
      'not in this tier (npm run test:matrix): Jest 29/30, Vitest 3.0/3.2/5.1, Node 22/24, the pytest ' +
        "bridge's own test suites under every Python found, the seq-test-pytest wheel installed with pip, and " +
        "the slower variants of the Vitest plugin's tests",
    );
  if (!matrix && !plain) out(`SKIPPED: ${NEEDS_PYTHON.e2e}: no Python >= ${minimum} on PATH`);
  const unsupported = pythons.filter((p) => !supportedByBridge(p));
  if (matrix && unsupported.length)
    out(
      `not tested (the pytest bridge needs Python >= ${minimum}): ${unsupported.map((p) => `${p.path} (${p.version})`).join(', ')}`,
    );
}
