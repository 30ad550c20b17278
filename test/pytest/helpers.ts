import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { REPO, type TestSandbox } from '../support/processes.js';
import type { Python } from '../support/python.js';

export const BRIDGE = join(REPO, 'integrations', 'pytest');
export const EXAMPLE = join(REPO, 'examples', 'pytest');
export const FIXTURES = join(REPO, 'test', 'pytest', 'fixtures');

/**
 * The Python interpreters of this tier, found by test/support/global-setup.ts (which prints them): the default
 * tier's is the first Python on PATH with pytest (null when there is none: the Python files then skip, and
 * the global setup has printed one line saying so); the matrix tier's list adds every pyenv version and
 * Debian's /usr/bin/python3.
 */
export const PYTHON: Python | null = inject('pytestOnPath') ?? null;
export const PYTHONS: Python[] = inject('pythons') ?? [];
/** The first Python >= 3.8 on PATH, with or without pytest (null when there is none). */
export const ANY_PYTHON: Python | null = inject('pythonOnPath') ?? null;

/**
 * Runs the bridge's own Python tests (integrations/pytest/tests) under `python`: with pytest when it has
 * pytest (unless `unitOnly`), else the stdlib-only modules under unittest. Nothing may be skipped but the xdist tests, and those
 * only when the interpreter has no pytest-xdist. Returns the summary line.
 */
export async function bridgeSuite(
  sandbox: TestSandbox,
  python: Python,
  { unitOnly = false }: { unitOnly?: boolean } = {},
): Promise<string> {
  if (python.pytest && !unitOnly) {
    const result = await sandbox.run(['-m', 'pytest', 'tests', '-q', '-rs', '-p', 'no:cacheprovider'], {
      file: python.path,
      cwd: BRIDGE,
      env: {
        ...(python.xdist ? { SEQ_TEST_REQUIRE_XDIST: '1' } : {}),
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONPATH: '',
        // The interpreter's other plugins (hypothesis, benchmark) cost seconds per run and are not under test
        // (the xdist tests load xdist with -p).
        PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1',
      },
    });
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    const summary = output.trim().split('\n').pop() ?? '';
    if (python.xdist) {
      expect(summary, output).toMatch(/^\d+ passed in /);
      expect(output).not.toMatch(/\bskipped\b|SKIPPED/);
    } else {
      // Only the xdist tests may skip, and only for that reason.
      expect(summary, output).toMatch(/^\d+ passed(, \d+ skipped)? in /);
      const reasons = output.split('\n').filter((line) => line.startsWith('SKIPPED'));
      for (const reason of reasons) expect(reason).toContain('pytest-xdist is not installed');
    }
    return summary;
  }
  const result = await sandbox.run(['-m', 'unittest', 'discover', '-s', 'tests', '-p', 'test_unit_*.py', '-v'], {
    file: python.path,
    cwd: BRIDGE,
    env: { PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '' },
  });
  const output = result.stdout + result.stderr;
  expect(result.code, output).toBe(0);
  expect(output).toMatch(/^OK$/m);
  expect(output).not.toMatch(/skipped/);
  return /^Ran \d+ tests in .*$/m.exec(output)?.[0] ?? '';
}

/** A copy of examples/pytest in `dir` (outside the repository, so its key is its own path). */
export function copyExample(dir: string): string {
  const root = join(dir, 'example');
  cpSync(EXAMPLE, root, {
    recursive: true,
    filter: (src) => !/(__pycache__|\.pytest_cache)/.test(src),
  });
  return root;
}

export interface Stamp {
  kind: 'S' | 'E';
  pid: number;
  /** Microseconds since the epoch. */
  at: number;
}

export function stamps(log: string): Stamp[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, pid, ns] = line.split(' ') as ['S' | 'E', string, string];
      return { kind, pid: Number(pid), at: Number(BigInt(ns) / 1000n) };
    });
}

/** Ticket files anywhere under a state dir (every queue, nested ones too). */
export function allTickets(stateDir: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (entry.name === 'tickets') found.push(...readdirSync(path).filter((n) => !n.startsWith('.tmp-')));
      else walk(path);
    }
  };
  walk(stateDir);
  return found;
}
