import { existsSync } from 'node:fs';
import { basename, dirname, join, normalize, relative } from 'node:path';
import { globSync } from 'tinyglobby';
import { parse as parseYaml } from 'yaml';
import { readText } from './detect.js';
import { splitArgs } from './shell-words.js';

/**
 * Which config files the repository's test commands actually load. A config counts when a package.json script
 * of the root or of a workspace package runs the runner: with `--config`/`-c`, that file; without, the file the
 * runner looks for in the script's directory. Vitest `projects` (and workspace files) and Jest `projects` are
 * loaded through the root config that names them.
 */
export type Runner = 'vitest' | 'jest';

export const CONFIG_NAMES: Record<Runner, string[]> = {
  // Vitest reads vite.config.* when there is no vitest.config.*.
  vitest: ['vitest.config', 'vite.config'].flatMap((b) =>
    ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((e) => `${b}.${e}`),
  ),
  jest: ['js', 'ts', 'mjs', 'cjs', 'mts', 'cts', 'json'].map((ext) => `jest.config.${ext}`),
};

/** A config file a test command loads (paths relative to the repository root, `/`-separated). */
export interface UsedConfig {
  file: string;
  /** Which scripts load it (`test`, `packages/a: test:unit`), empty when found by name only. */
  loadedBy: string[];
}

/** A directory where a script runs the runner with no config file to load. */
export interface Unconfigured {
  dir: string;
  loadedBy: string[];
}

export interface RunnerConfigs {
  configs: UsedConfig[];
  unconfigured: Unconfigured[];
  /** Workspace packages (relative dirs), root first as ''. */
  packages: string[];
}

/** The root and its workspace packages (npm/yarn `workspaces`, pnpm-workspace.yaml), as relative dirs. */
export function workspacePackages(root: string): string[] {
  const patterns: string[] = [];
  try {
    const pkg = JSON.parse(readText(join(root, 'package.json')) ?? '{}') as { workspaces?: unknown };
    const ws = pkg.workspaces;
    const list = Array.isArray(ws) ? ws : (ws as { packages?: unknown } | undefined)?.packages;
    if (Array.isArray(list)) patterns.push(...list.filter((p): p is string => typeof p === 'string'));
  } catch {}
  const pnpm = readText(join(root, 'pnpm-workspace.yaml'));
  if (pnpm) {
    try {
      const doc = parseYaml(pnpm) as { packages?: unknown } | null;
      if (Array.isArray(doc?.packages))
        patterns.push(...doc.packages.filter((p): p is string => typeof p === 'string'));
    } catch {}
  }
  if (patterns.length === 0) return [''];
  const dirs = globSync(
    patterns.map((p) => (p.startsWith('!') ? p : `${p.replace(/\/+$/, '')}/package.json`)),
    { cwd: root, ignore: ['**/node_modules/**'], expandDirectories: false },
  ).map((f) => dirname(f).replace(/^\.$/, ''));
  return ['', ...[...new Set(dirs)].filter((d) => d !== '').sort()];
}

/** Each time a script runs the runner: its config option (`--config`, `-c`), `--root` and `cd` directory. */
export function runnerInvocations(script: string, runner: Runner): { config?: string; cwd: string }[] {
  const found: { config?: string; cwd: string }[] = [];
  let cwd = '';
  for (const part of script.split(/&&|\|\||;|\|/)) {
    const args = splitArgs(part.trim());
    if (args[0] === 'cd' && args[1]) {
      cwd = normalize(join(cwd, args[1])).replace(/^\.$/, '');
      continue;
    }
    const at = args.findIndex((a) => isRunnerBinary(a, runner));
    if (at === -1) continue;
    let config: string | undefined;
    let dir = cwd;
    for (let i = at + 1; i < args.length; i++) {
      const arg = args[i] as string;
      const value = (long: string, short?: string) => {
        if (arg === long || (short && arg === short)) return args[++i];
        if (arg.startsWith(`${long}=`)) return arg.slice(long.length + 1);
        return undefined;
      };
      config = value('--config', '-c') ?? config;
      const rootDir = runner === 'vitest' ? value('--root', '-r') : value('--rootDir');
      if (rootDir) dir = normalize(join(cwd, rootDir)).replace(/^\.$/, '');
    }
    found.push({ ...(config ? { config: normalize(join(cwd, config)) } : {}), cwd: dir });
  }
  return found;
}

function isRunnerBinary(arg: string, runner: Runner): boolean {
  const name = basename(arg);
  if (runner === 'vitest') return name === 'vitest' || name === 'vitest.mjs';
  return name === 'jest' || (name === 'jest.js' && arg.includes('jest/bin'));
}

/** The configs `runner` loads in this repository, and the directories where it runs without one. */
export function findRunnerConfigs(root: string, runner: Runner): RunnerConfigs {
  const packages = workspacePackages(root);
  const configs = new Map<string, string[]>();
  const unconfigured = new Map<string, string[]>();
  const use = (file: string, by?: string) => {
    const list = configs.get(file) ?? [];
    if (by && !list.includes(by)) list.push(by);
    configs.set(file, list);
  };
  for (const dir of packages) {
    let pkg: {
      scripts?: Record<string, unknown>;
      dependencies?: Record<string, unknown>;
      devDependencies?: Record<string, unknown>;
    } = {};
    try {
      pkg = JSON.parse(readText(join(root, dir, 'package.json')) ?? '{}');
    } catch {}
    for (const [name, script] of Object.entries(pkg.scripts ?? {})) {
      if (typeof script !== 'string') continue;
      const by = dir ? `${dir}: ${name}` : name;
      for (const run of runnerInvocations(script, runner)) {
        const base = join(dir, run.cwd);
        if (run.config) {
          use(slash(join(dir, run.config)), by);
          continue;
        }
        const file = defaultConfig(root, base, runner);
        if (file) use(file, by);
        else if (runner === 'jest' && hasPackageJsonJest(root, base)) use(slash(join(base, 'package.json')), by);
        else {
          const list = unconfigured.get(slash(base)) ?? [];
          list.push(by);
          unconfigured.set(slash(base), list);
        }
      }
    }
    // A config at the root of a package is loaded by a plain `vitest`/`jest` there, script or not.
    const own = defaultConfig(root, dir, runner);
    // A vite.config.* is a Vitest config only where Vitest is used.
    const viteOnly =
      own !== undefined &&
      basename(own).startsWith('vite.') &&
      !('vitest' in { ...pkg.dependencies, ...pkg.devDependencies });
    if (own && !viteOnly && !configs.has(own) && (dir === '' || !projectOfRoot(root, runner, own))) use(own);
  }
  return {
    configs: [...configs].map(([file, loadedBy]) => ({ file, loadedBy })),
    unconfigured: [...unconfigured].map(([dir, loadedBy]) => ({ dir, loadedBy })),
    packages,
  };
}

function defaultConfig(root: string, dir: string, runner: Runner): string | undefined {
  const name = CONFIG_NAMES[runner].find((f) => existsSync(join(root, dir, f)));
  return name ? slash(join(dir, name)) : undefined;
}

function hasPackageJsonJest(root: string, dir: string): boolean {
  try {
    return (JSON.parse(readText(join(root, dir, 'package.json')) ?? '{}') as { jest?: unknown }).jest !== undefined;
  } catch {
    return false;
  }
}

/** Whether a package's config is a project of the root config (loaded through it, covered by its plugin). */
function projectOfRoot(root: string, runner: Runner, file: string): boolean {
  return projectFiles(root, runner).includes(file);
}

/**
 * Config files the root config runs as projects: Vitest `test.projects` / `vitest.workspace.*` entries, Jest
 * `projects`, as globs of config files or directories. Read as text (string literals in the array): enough to
 * name them; inline project objects have no file of their own.
 */
export function projectFiles(root: string, runner: Runner): string[] {
  const sources: string[] = [];
  const rootConfig = defaultConfig(root, '', runner);
  const text = rootConfig ? readText(join(root, rootConfig)) : undefined;
  const array = text ? /\b(projects|workspace)\s*:\s*\[([\s\S]*?)\]/.exec(text)?.[2] : undefined;
  if (array) sources.push(...[...array.matchAll(/['"`]([^'"`\n]+)['"`]/g)].map((m) => m[1] as string));
  if (runner === 'vitest') {
    for (const name of [
      'vitest.workspace.ts',
      'vitest.workspace.js',
      'vitest.workspace.mjs',
      'vitest.workspace.json',
    ]) {
      const ws = readText(join(root, name));
      if (ws) sources.push(...[...ws.matchAll(/['"`]([^'"`\n]+)['"`]/g)].map((m) => m[1] as string));
    }
  }
  const files: string[] = [];
  for (const source of sources) {
    const pattern = source.replace(/^<rootDir>\/?/, '').replace(/^\.\//, '');
    if (!pattern || /^(vitest|@|node:)/.test(pattern) || pattern.includes('\n')) continue;
    const matches = globSync([pattern], { cwd: root, onlyFiles: false, ignore: ['**/node_modules/**'] });
    for (const match of matches) {
      const path = match.replace(/\/$/, '');
      const asConfig = CONFIG_NAMES[runner].includes(basename(path)) || /\.config\.[cm]?[jt]s$/.test(path);
      if (asConfig) files.push(slash(path));
      else {
        const inner = defaultConfig(root, path, runner);
        if (inner) files.push(inner);
      }
    }
  }
  return [...new Set(files)];
}

function slash(path: string): string {
  return relative('.', path).split('\\').join('/') || path;
}
