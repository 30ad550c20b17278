import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { inject } from 'vitest';
import { REPO, type TestSandbox } from '../support/processes.js';

/**
 * The Python side: the first Python on PATH with pytest, as found (and printed) by the tests' global setup.
 * Without one the suites skip (NO_PYTHON), and the global setup has printed one line saying so.
 */
const found = inject('pytestOnPath') ?? null;
export const NO_PYTHON = found === null;
export const PYTHON = found?.path ?? 'python3';
export const CONTENDER = join(REPO, 'test', 'conformance', 'py_contender.py');
export const TEMPLATES = join(REPO, 'integrations', 'pytest', 'templates');

/** Fails (never skips) with a clear message when an interpreter or module the suite needs is missing. */
export function requireInterpreter(python: string, modules: string[] = []): string {
  try {
    return execFileSync(
      python,
      ['-c', `import sys${modules.map((m) => `, ${m}`).join('')}; print(sys.version.split()[0])`],
      { encoding: 'utf8' },
    ).trim();
  } catch (error) {
    throw new Error(
      `${python}${modules.length ? ` with ${modules.join(', ')}` : ''} is required by this suite and is not usable here ` +
        `(${(error as Error).message.split('\n')[0]}). CI installs Debian's python3-pytest and python3-pytest-xdist ` +
        '(.ci/run); the pyenv interpreters come with the machine image.',
    );
  }
}

export interface Span {
  ticket: string;
  number: number;
  /** Microseconds since the epoch. */
  start: number;
  end: number;
}

/** A `seq-test run` job that appends "S <ticket> <ns>" and "E <ticket> <ns>" to the log (as py_contender does). */
export function tsJob(log: string, ms: number): string[] {
  const sleep = ms > 0 ? `sleep ${(ms / 1000).toFixed(3)}; ` : '';
  return [
    'bash',
    '-c',
    `echo "S $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}; ${sleep}echo "E $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}`,
  ];
}

export function spans(log: string): Span[] {
  const byTicket = new Map<string, Partial<Span>>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, ticket, ns] = line.split(' ') as [string, string, string];
    const span = byTicket.get(ticket) ?? { ticket, number: Number(ticket.split('-')[0]) };
    if (kind === 'S') span.start = Number(BigInt(ns) / 1000n);
    else span.end = Number(BigInt(ns) / 1000n);
    byTicket.set(ticket, span);
  }
  return [...byTicket.values()] as Span[];
}

/** Ticket file names in the top-level queue of a key, in queue order. */
export function ticketsIn(stateDir: string, key: string): string[] {
  const dir = join(stateDir, keyDirName(key), 'tickets');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.tmp-'))
    .sort();
}

/**
 * A pytest project in the sandbox with the bridge installed as `seq-test init --pytest` installs it (the
 * three modules next to a conftest.py that registers the plugin), plus the given test files.
 */
export function pytestProject(sandbox: TestSandbox, files: Record<string, string>, name = 'project'): string {
  const root = join(sandbox.dir, name);
  mkdirSync(root, { recursive: true });
  for (const module of ['seq_test_lock.py', 'seq_subprocess.py', 'seq_test_plugin.py']) {
    cpSync(join(TEMPLATES, module), join(root, module));
  }
  writeFileSync(join(root, 'conftest.py'), 'pytest_plugins = ["seq_test_plugin"]\n');
  writeFileSync(join(root, 'pytest.ini'), '[pytest]\n');
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  return root;
}
