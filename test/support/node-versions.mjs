#!/usr/bin/env node
// Node binaries for the version matrix: the running Node when its major matches, else the npm package
// node-<platform>-<arch>@<major> (the official binary, from the npm registry: the one network access the
// matrix needs besides `npm ci`), unpacked once into node_modules/.cache/seq-test-node/<major>/ and reused.
//
//   node test/support/node-versions.mjs 22 24     # fetch what is missing, print what each is
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = join(REPO, 'node_modules', '.cache', 'seq-test-node');

/** The Node binary of one major version; fetches it when this is not that version and it is not cached. */
export function ensureNode(major, { log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  const binary = join(CACHE, String(major), 'bin', 'node');
  if (existsSync(binary)) return binary;
  const pkg = `node-${process.platform}-${process.arch}@${major}`;
  log(`fetching Node ${major} for the version matrix (npm pack ${pkg})`);
  const scratch = mkdtempSync(join(tmpdir(), 'seq-test-node-'));
  try {
    // Under `npm run`, npm_config_* variables describe the monorepo root; a nested npm must not see them.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', scratch], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...env, npm_config_update_notifier: 'false' },
    });
    const tarball = readdirSync(scratch).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${pkg} produced no tarball`);
    execFileSync('tar', ['xzf', join(scratch, tarball), '-C', scratch, 'package/bin/node']);
    mkdirSync(dirname(binary), { recursive: true });
    // Staged under a private name, then renamed: a concurrent reader never sees half a binary.
    const staged = join(dirname(binary), `.node-${process.pid}`);
    writeFileSync(staged, readFileSync(join(scratch, 'package', 'bin', 'node')), { mode: 0o755 });
    execFileSync('mv', [staged, binary]);
    writeFileSync(join(CACHE, String(major), 'SOURCE'), `${tarball}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return binary;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const major of process.argv.slice(2).map(Number)) {
    const node = ensureNode(major);
    process.stdout.write(`Node ${major}: ${execFileSync(node, ['--version']).toString().trim()} (${node})\n`);
  }
}
