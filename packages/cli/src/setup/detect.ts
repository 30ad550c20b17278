import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, type HooksLayout, hooksLayout } from './git.js';
import { type ConfigManager, detectConfigManager } from './hook-managers.js';
import { findRunnerConfigs, projectFiles, type RunnerConfigs } from './test-configs.js';

export const VITEST_CONFIGS = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => `vitest.config.${ext}`);
export const VITE_CONFIGS = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => `vite.config.${ext}`);
export const JEST_CONFIGS = ['js', 'ts', 'mjs', 'cjs', 'mts', 'cts', 'json'].map((ext) => `jest.config.${ext}`);
export const PYTEST_CONFIGS = ['pytest.ini', 'pyproject.toml', 'tox.ini', 'setup.cfg'];
export const PRE_COMMIT_CONFIG = '.pre-commit-config.yaml';

export interface PackageJson {
  path: string;
  text: string;
  data: Record<string, unknown> & {
    scripts?: Record<string, string>;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
    jest?: unknown;
  };
}

/** How a test runner is used: every config a test command loads, and where one runs without a config. */
export interface RunnerUse extends RunnerConfigs {
  used: boolean;
  /** The root's config file, if any (kept for messages about the root). */
  configFile?: string;
  reasons: string[];
  /** Config files the root config loads as projects (covered by the root config's integration). */
  projects: string[];
}

/** What a repository uses, found by looking at files only (nothing is run but `git rev-parse`/`git config`). */
export interface Detection {
  root: string;
  isGit: boolean;
  packageJson?: PackageJson;
  packageManager: 'npm' | 'pnpm' | 'yarn' | 'bun';
  /** `scripts.test` of package.json, when it is not npm's placeholder. */
  testScript?: string;
  vitest: RunnerUse;
  jest: RunnerUse & { inPackageJson: boolean };
  pytest: { used: boolean; configFiles: string[]; reasons: string[] };
  preCommitConfig?: string;
  hooks?: HooksLayout;
  /** simple-git-hooks or lefthook: hooks generated from a config of their own. */
  hookManager?: ConfigManager;
  githubWorkflows: string[];
  gitlabCi?: string;
}

export function detect(root: string): Detection {
  const packageJson = readPackageJson(root);
  const deps = { ...packageJson?.data.dependencies, ...packageJson?.data.devDependencies };
  const scripts = packageJson?.data.scripts ?? {};
  const scriptText = Object.values(scripts).join('\n');
  const testScript =
    scripts.test && !/no test specified/.test(scripts.test) ? (scripts.test as string | undefined) : undefined;

  const vitestConfig = VITEST_CONFIGS.find((f) => existsSync(join(root, f)));
  const viteConfig = VITE_CONFIGS.find((f) => existsSync(join(root, f)));
  const vitestReasons: string[] = [];
  if ('vitest' in deps) vitestReasons.push('vitest in package.json dependencies');
  if (/\bvitest\b/.test(scriptText)) vitestReasons.push('a package.json script runs vitest');
  if (vitestConfig) vitestReasons.push(vitestConfig);
  const vitestConfigs = findRunnerConfigs(root, 'vitest');
  if (vitestConfigs.configs.some((c) => c.file.includes('/'))) vitestReasons.push('configs of workspace packages');
  const vitestUsed = vitestReasons.length > 0;

  const jestConfig = JEST_CONFIGS.find((f) => existsSync(join(root, f)));
  const jestReasons: string[] = [];
  if ('jest' in deps) jestReasons.push('jest in package.json dependencies');
  if (/\bjest\b/.test(scriptText)) jestReasons.push('a package.json script runs jest');
  if (jestConfig) jestReasons.push(jestConfig);
  if (packageJson?.data.jest !== undefined) jestReasons.push('package.json "jest"');
  const jestConfigs = findRunnerConfigs(root, 'jest');
  if (jestConfigs.configs.some((c) => c.file.includes('/'))) jestReasons.push('configs of workspace packages');

  const pytestConfigs = PYTEST_CONFIGS.filter((f) => pytestConfigIn(join(root, f)));
  const pytestReasons = [...pytestConfigs];
  if (existsSync(join(root, 'conftest.py'))) pytestReasons.push('conftest.py');
  for (const req of safeList(root).filter((f) => /^requirements.*\.txt$/.test(f))) {
    if (/^\s*pytest\b/m.test(readText(join(root, req)) ?? '')) pytestReasons.push(`pytest in ${req}`);
  }

  const workflowsDir = join(root, '.github', 'workflows');
  const githubWorkflows = safeList(workflowsDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join('.github', 'workflows', f));

  const isGit = git(root, ['rev-parse', '--git-dir']) !== undefined;
  const hookManager = isGit ? detectConfigManager(root, packageJson?.data) : undefined;
  return {
    root,
    isGit,
    ...(packageJson ? { packageJson } : {}),
    packageManager: packageManager(root, packageJson),
    ...(testScript ? { testScript } : {}),
    vitest: {
      used: vitestUsed,
      ...((vitestConfig ?? (vitestUsed ? viteConfig : undefined))
        ? { configFile: vitestConfig ?? (viteConfig as string) }
        : {}),
      reasons: vitestReasons,
      ...vitestConfigs,
      projects: projectFiles(root, 'vitest'),
    },
    jest: {
      used: jestReasons.length > 0,
      ...(jestConfig ? { configFile: jestConfig } : {}),
      inPackageJson: packageJson?.data.jest !== undefined,
      reasons: jestReasons,
      ...jestConfigs,
      projects: projectFiles(root, 'jest'),
    },
    pytest: { used: pytestReasons.length > 0, configFiles: pytestConfigs, reasons: pytestReasons },
    ...(existsSync(join(root, PRE_COMMIT_CONFIG)) ? { preCommitConfig: PRE_COMMIT_CONFIG } : {}),
    ...(isGit ? { hooks: hooksLayout(root) } : {}),
    ...(hookManager ? { hookManager } : {}),
    githubWorkflows,
    ...(existsSync(join(root, '.gitlab-ci.yml')) ? { gitlabCi: '.gitlab-ci.yml' } : {}),
  };
}

function readPackageJson(root: string): PackageJson | undefined {
  const path = join(root, 'package.json');
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    const data = JSON.parse(text);
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) return { path, text, data };
  } catch {}
  return undefined;
}

function packageManager(root: string, pkg: PackageJson | undefined): Detection['packageManager'] {
  const declared = typeof pkg?.data.packageManager === 'string' ? pkg.data.packageManager.split('@')[0] : undefined;
  if (declared === 'pnpm' || declared === 'yarn' || declared === 'bun' || declared === 'npm') return declared;
  if (existsSync(join(root, 'pnpm-lock.yaml'))) return 'pnpm';
  if (existsSync(join(root, 'yarn.lock'))) return 'yarn';
  if (existsSync(join(root, 'bun.lockb')) || existsSync(join(root, 'bun.lock'))) return 'bun';
  return 'npm';
}

/** Whether a pytest.ini/pyproject.toml/tox.ini/setup.cfg holds a pytest section. */
function pytestConfigIn(file: string): boolean {
  const text = readText(file);
  if (text === undefined) return false;
  if (file.endsWith('pytest.ini')) return true;
  if (file.endsWith('pyproject.toml')) return /^\s*\[tool\.pytest(\.ini_options)?\]/m.test(text);
  if (file.endsWith('setup.cfg')) return /^\s*\[tool:pytest\]/m.test(text);
  return /^\s*\[pytest\]/m.test(text);
}

export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
