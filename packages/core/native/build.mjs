// Builds the optional Linux subreaper helper into dist/. Never fails the build: without a C compiler
// seq-test falls back to process-group + token + descendant tracking (see docs/process-tree.md).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'seq-test-subreaper');
if (process.platform !== 'linux') {
  console.log('seq-test: subreaper helper is Linux-only; skipped');
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
const result = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-o', out, join(here, 'subreaper.c')], { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    `seq-test: could not build the subreaper helper with ${cc} (${result.error?.message ?? `exit ${result.status}`}); escapees that empty their environment will not be caught`,
  );
}
