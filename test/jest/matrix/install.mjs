#!/usr/bin/env node
// Installs the Jest versions the @seq-test/jest tests and benchmark run against, each in its own directory
// here (jest29/, jest30/: a package.json pinning the version and its package-lock.json), with `npm ci`, so
// that a fresh clone (CI) gets exactly the locked trees. An install is skipped while its lockfile is
// unchanged since the last one (a stamp in node_modules/), so repeated test runs cost nothing.
//
//   node test/jest/matrix/install.mjs            # every version
//   node test/jest/matrix/install.mjs jest29     # one
//
// The tests call ensureJest() from their beforeAll; the benchmark does the same.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const MATRIX_DIR = dirname(fileURLToPath(import.meta.url));
export const JEST_VERSIONS = ['jest29', 'jest30'];

/** Paths of one installed version (after ensureJest). */
export function jestInstall(name) {
  const dir = join(MATRIX_DIR, name);
  const modules = join(dir, 'node_modules');
  return {
    name,
    dir,
    bin: join(modules, 'jest', 'bin', 'jest.js'),
    /** Jest's cache for this version, kept inside its install so that versions never share one. */
    cacheDir: join(modules, '.cache', 'jest'),
    version: () => JSON.parse(readFileSync(join(modules, 'jest', 'package.json'), 'utf8')).version,
  };
}

/** Installs `name` with npm ci unless its lockfile is unchanged since the last install. Returns jestInstall(). */
export async function ensureJest(name) {
  if (!JEST_VERSIONS.includes(name))
    throw new Error(`unknown Jest fixture "${name}" (known: ${JEST_VERSIONS.join(', ')})`);
  const install = jestInstall(name);
  const lockfile = join(install.dir, 'package-lock.json');
  const stamp = join(install.dir, 'node_modules', '.seq-test-installed');
  const wanted = createHash('sha256').update(readFileSync(lockfile)).digest('hex');
  const current = () => (existsSync(stamp) && existsSync(install.bin) ? readFileSync(stamp, 'utf8').trim() : '');
  if (current() === wanted) return install;

  // One installer at a time per version (two test files or a test and the benchmark may ask at once).
  const lock = join(install.dir, '.installing');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      await sleep(200);
    }
  }
  try {
    if (current() === wanted) return install;
    // Under `npm test`, npm_config_* variables describe the monorepo root; a nested npm must not see them.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: install.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
    if (result.status !== 0) {
      throw new Error(
        `npm ci in ${install.dir} failed (${result.status ?? result.signal}):\n${result.stderr || result.stdout}`,
      );
    }
    writeFileSync(stamp, `${wanted}\n`);
    return install;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : JEST_VERSIONS;
  for (const name of names) {
    const begun = Date.now();
    const install = await ensureJest(name);
    console.log(
      `${name}: jest ${install.version()} ready in ${install.dir} (${((Date.now() - begun) / 1000).toFixed(1)} s)`,
    );
  }
}
