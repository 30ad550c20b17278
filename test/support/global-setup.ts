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

export default function setup(project: TestProject): void {
  const matrix = project.name === 'matrix';
  const pythons = discoverPythons({ everywhere: matrix });
  const chosen = pytestOnPath(pythons) ?? null;
  project.provide('pythons', pythons);
  project.provide('pytestOnPath', chosen);
  const plain = firstOnPath(pythons) ?? null;
  project.provide('pythonOnPath', plain);
  const out = (line: string) => process.stdout.write(`[${project.name}] ${line}\n`);
  out(
    pythons.length
      ? `Python interpreters found (${matrix ? 'PATH, pyenv root, /usr/bin' : 'PATH'}):\n${pythons.map((p) => `  ${describePython(p)}`).join('\n')}`
      : 'no Python interpreter found on PATH',
  );
  if (chosen) out(`Python end-to-end tests use ${describePython(chosen)}`);
  else
    out(
      `SKIPPED: the Python end-to-end tests (test/pytest, test/conformance, test/memory/pytest-auto): no Python >= ${BRIDGE_MIN_PYTHON.join('.')} ` +
        'with pytest on PATH (install pytest: apt-get install python3-pytest, or pip install pytest)',
    );
  for (const [tool, { tests, install }] of Object.entries(OPTIONAL_TOOLS)) {
    if (!available(tool as keyof typeof OPTIONAL_TOOLS)) out(`SKIPPED: ${tests}: no ${tool} on PATH (${install})`);
  }
  if (!matrix)
    out(
      'not in this tier (npm run test:matrix): Jest 29/30, Vitest 3.0/3.2/5.1, Node 22/24, and the pytest ' +
        "bridge's own test suites under every Python found",
    );
  if (!matrix && !plain)
    out(
      `SKIPPED: the pytest bridge's stdlib-only unit tests (test/pytest/python-suites.test.ts): no Python >= ${BRIDGE_MIN_PYTHON.join('.')} on PATH`,
    );
  const unsupported = pythons.filter((p) => !supportedByBridge(p));
  if (matrix && unsupported.length)
    out(
      `not tested (the pytest bridge needs Python >= ${BRIDGE_MIN_PYTHON.join('.')}): ${unsupported.map((p) => `${p.path} (${p.version})`).join(', ')}`,
    );
}
