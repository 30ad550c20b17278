// Which Python interpreters this machine has, found rather than assumed: every python3 / python3.N on PATH
// (what the Unix `py` launcher scans), every version under `pyenv root` (or $PYENV_ROOT), and Debian's
// /usr/bin/python3. Each is asked for its version, real executable and its pytest / pytest-xdist; the same
// interpreter reached twice (a pyenv shim and the version it runs) is listed once.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Python {
  /** The path the tests run it by (the first way it was found). */
  path: string;
  /** Where it was found: 'PATH', 'pyenv' or 'system'. */
  source: 'PATH' | 'pyenv' | 'system';
  /** sys.executable, resolved. */
  executable: string;
  /** e.g. 3.11.7 */
  version: string;
  /** pytest's version, when importable. */
  pytest?: string;
  /** pytest-xdist's version, when importable. */
  xdist?: string;
}

/** The oldest Python the pytest bridge supports (integrations/pytest/README.md). */
export const BRIDGE_MIN_PYTHON: [number, number] = [3, 8];

export function supportedByBridge(python: Python): boolean {
  const [major = 0, minor = 0] = python.version.split('.').map(Number);
  return major > BRIDGE_MIN_PYTHON[0] || (major === BRIDGE_MIN_PYTHON[0] && minor >= BRIDGE_MIN_PYTHON[1]);
}

const PROBE = [
  'import json, os, sys',
  'info = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": os.path.realpath(sys.executable)}',
  'for name, module in (("pytest", "pytest"), ("xdist", "xdist")):',
  '    try:',
  // A directory named pytest imports as an empty namespace package: only a module with a version counts.
  '        info[name] = str(__import__(module).__version__)',
  '    except Exception:',
  '        pass',
  'print(json.dumps(info))',
].join('\n');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** python3, python3.N and python in each PATH directory, in PATH order (in each: python3, python3.N, python). */
function onPath(): string[] {
  const found: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const rank = (n: string) => (n === 'python3' ? 0 : n === 'python' ? 2 : 1);
    const ours = names.filter((n) => /^python(3(\.\d+)?)?$/.test(n)).sort((a, b) => rank(a) - rank(b));
    for (const name of ours) if (executable(join(dir, name))) found.push(join(dir, name));
  }
  return found;
}

/** `pyenv root` (which honours $PYENV_ROOT); undefined without pyenv on PATH. */
function pyenvRoot(): string | undefined {
  const asked = spawnSync('pyenv', ['root'], { encoding: 'utf8', timeout: 60_000 });
  const root = asked.status === 0 ? asked.stdout.trim() : undefined;
  return root && existsSync(root) ? root : undefined;
}

function underPyenv(): string[] {
  const root = pyenvRoot();
  if (!root || !existsSync(join(root, 'versions'))) return [];
  return readdirSync(join(root, 'versions'))
    .sort()
    .flatMap((version) => ['python3', 'python'].map((name) => join(root, 'versions', version, 'bin', name)))
    .filter(executable);
}

/** Asks the interpreter for its version, real executable and modules; undefined if it cannot answer. */
function probe(path: string): Promise<Omit<Python, 'path' | 'source'> | undefined> {
  return new Promise((resolve) => {
    execFile(
      path,
      ['-c', PROBE],
      {
        encoding: 'utf8',
        // A slow machine is fine; a hung interpreter is not one we can use.
        timeout: 60_000,
        env: { ...process.env, PYTHONPATH: '', PYTHONDONTWRITEBYTECODE: '1' },
      },
      (error, stdout) => {
        try {
          resolve(error ? undefined : JSON.parse(stdout.trim().split('\n').pop() ?? ''));
        } catch {
          resolve(undefined);
        }
      },
    );
  });
}

/**
 * The usable interpreters, PATH ones first (in PATH order); with `everywhere`, then pyenv's and Debian's
 * /usr/bin/python3 too.
 */
export async function discoverPythons({ everywhere }: { everywhere: boolean }): Promise<Python[]> {
  const candidates: [string, Python['source']][] = [
    ...onPath().map((p) => [p, 'PATH'] as [string, Python['source']]),
    ...(everywhere
      ? [
          ...underPyenv().map((p) => [p, 'pyenv'] as [string, Python['source']]),
          ['/usr/bin/python3', 'system'] as [string, Python['source']],
        ]
      : []),
  ];
  const seen = new Set<string>();
  const distinct = candidates.filter(([path]) => {
    try {
      const real = realpathSync(path);
      if (seen.has(real)) return false;
      seen.add(real);
      return true;
    } catch {
      return false;
    }
  });
  // All at once: a pyenv shim takes a second or more to answer on a loaded machine.
  const answers = await Promise.all(distinct.map(([path]) => probe(path)));
  const pythons: Python[] = [];
  distinct.forEach(([path, source], i) => {
    const info = answers[i];
    if (!info || seen.has(`exe:${info.executable}`)) return;
    seen.add(`exe:${info.executable}`);
    pythons.push({ path, source, ...info });
  });
  return pythons;
}

/** The first Python on PATH that the bridge supports, pytest or not (its stdlib-only modules need none). */
export function firstOnPath(pythons: Python[]): Python | undefined {
  return pythons.find((p) => p.source === 'PATH' && supportedByBridge(p));
}

/** The default tier's Python: the first one on PATH that has pytest and that the bridge supports. */
export function pytestOnPath(pythons: Python[]): Python | undefined {
  return pythons.find((p) => p.source === 'PATH' && p.pytest && supportedByBridge(p));
}

export function describePython(p: Python): string {
  const modules = [p.pytest ? `pytest ${p.pytest}` : 'no pytest', p.xdist ? `xdist ${p.xdist}` : 'no xdist'];
  return `${p.path} (${p.source}): Python ${p.version}, ${modules.join(', ')}`;
}
