import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../support/processes.js';

export const BRIDGE = join(REPO, 'integrations', 'pytest');
export const EXAMPLE = join(REPO, 'examples', 'pytest');
export const FIXTURES = join(REPO, 'test', 'pytest', 'fixtures');

/** The interpreters of the tested matrix (README of @seq-test/pytest). Missing ones fail the suite. */
export const PY = {
  /** pyenv's 3.11 on PATH, with pytest 9. */
  pyenv311: 'python3',
  /** Debian's Python with python3-pytest (7.x) and python3-pytest-xdist. */
  debian: '/usr/bin/python3',
  py38: join(homedir(), '.pyenv', 'versions', '3.8.18', 'bin', 'python3'),
  py313: join(homedir(), '.pyenv', 'versions', '3.13.0', 'bin', 'python3'),
};

/** Version of an interpreter and of the given modules; throws a clear error when one is missing. */
export function probe(python: string, modules: string[] = []): string {
  const code = [
    'import sys',
    ...modules.map((m) => `import ${m}`),
    `print(" ".join(["python " + sys.version.split()[0]] + [${modules.map((m) => `"${m} " + getattr(${m}, "__version__", "?")`).join(', ')}]))`,
  ].join('\n');
  try {
    return execFileSync(python, ['-c', code], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: '' } }).trim();
  } catch (error) {
    throw new Error(
      `${python}${modules.length ? ` with ${modules.join(', ')}` : ''} is required by the pytest bridge's test matrix ` +
        `but is not usable here: ${(error as Error).message.split('\n')[0]}. CI's .ci/run installs python3-pytest and ` +
        'python3-pytest-xdist with apt; the pyenv interpreters (3.8.18, 3.11.7 with pytest 9, 3.13.0) come with the image.',
    );
  }
}

const DEBIAN_SITE = '/usr/lib/python3/dist-packages';

/**
 * pytest-xdist for pyenv's pytest 9: PyPI is out of reach here, so Debian's pure-Python xdist and execnet
 * (and their metadata, for the entry points) are put on PYTHONPATH through a directory of symlinks.
 */
export function xdistShim(dir: string): string {
  const shim = join(dir, 'xdist-shim');
  mkdirSync(shim, { recursive: true });
  const wanted = (name: string) =>
    /^(xdist|execnet)$/.test(name) || /^(pytest_xdist|execnet)-[^/]*\.(dist-info|egg-info)$/.test(name);
  const found = existsSync(DEBIAN_SITE) ? readdirSync(DEBIAN_SITE).filter(wanted) : [];
  if (!found.includes('xdist') || !found.includes('execnet')) {
    throw new Error(
      `pytest-xdist is not in ${DEBIAN_SITE}: install python3-pytest-xdist (apt-get install -y python3-pytest-xdist)`,
    );
  }
  for (const name of found) {
    if (!existsSync(join(shim, name))) symlinkSync(join(DEBIAN_SITE, name), join(shim, name));
  }
  return shim;
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
