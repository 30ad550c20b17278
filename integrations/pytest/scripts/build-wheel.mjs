#!/usr/bin/env node
// Builds the seq-test-pytest wheel into dist/ with the standard backend (setuptools + wheel, no network:
// pip wheel --no-build-isolation --no-index). The build runs in a scratch copy, so setuptools' build/ and
// *.egg-info never land in the checkout. Without a Python that has setuptools and wheel it says so and exits 0
// (the JavaScript packages do not need the wheel); SEQ_TEST_REQUIRE_WHEEL=1 makes that an error (CI).
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const candidates = [process.env.SEQ_TEST_PYTHON, 'python3', '/usr/bin/python3', 'python'].filter(Boolean);
const python = candidates.find(
  (p) => spawnSync(p, ['-c', 'import setuptools, wheel'], { stdio: 'ignore' }).status === 0,
);
if (!python) {
  const message = `seq-test-pytest wheel not built: no Python with setuptools and wheel among ${candidates.join(', ')} (Debian: apt install python3-setuptools python3-wheel)`;
  if (process.env.SEQ_TEST_REQUIRE_WHEEL === '1') {
    console.error(message);
    process.exit(1);
  }
  console.log(message);
  process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), 'seq-test-wheel-'));
try {
  const src = join(scratch, 'src');
  mkdirSync(join(src, 'templates'), { recursive: true });
  for (const file of ['pyproject.toml', 'README.md']) copyFileSync(join(here, file), join(src, file));
  for (const file of readdirSync(join(here, 'templates')).filter((f) => f.endsWith('.py'))) {
    copyFileSync(join(here, 'templates', file), join(src, 'templates', file));
  }
  const out = join(scratch, 'out');
  const built = spawnSync(
    python,
    ['-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '--no-index', '-q', '-w', out, src],
    { stdio: 'inherit', env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONDONTWRITEBYTECODE: '1' } },
  );
  if (built.status !== 0) process.exit(built.status ?? 1);
  const dist = join(here, 'dist');
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  cpSync(out, dist, { recursive: true });
  console.log(`built ${readdirSync(dist).join(', ')} with ${python}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
