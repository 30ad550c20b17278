#!/usr/bin/env node
// Installs what the @seq-test/vitest compatibility tests need, from this repo alone, and only when missing:
//   - each Vitest fixture (vitest-*/package.json + its own package-lock.json) with `npm ci`;
//   - a Node >= 22.12 for Vitest 5 (the repo itself runs on Node 20): the current one if new enough, else
//     Node 24 from test/support/node-versions.mjs.
// The tests call ensureMatrix() themselves; CI may run `node test/vitest/matrix/install.mjs` first to do it
// up front. Safe to run concurrently (a lock directory serializes installers).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNode } from '../../support/node-versions.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..', '..');

/** The tested versions: the fixture dir (or the repo's own install) and which Node runs it. */
export const MATRIX = [
  { name: '3.0', dir: join(HERE, 'vitest-3.0'), node: 'repo' },
  { name: '3.2', dir: join(HERE, 'vitest-3.2'), node: 'repo' },
  { name: '4.1', dir: REPO, node: 'repo' },
  { name: '5.1', dir: join(HERE, 'vitest-5.1'), node: '24' },
];

const NODE_MAJOR = 24;

/** Path of the vitest package a matrix entry uses. */
export function vitestDir(entry) {
  return join(entry.dir, 'node_modules', 'vitest');
}

/** Installs whatever is missing; returns { name → { vitest, node, version } }. */
export function ensureMatrix({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  return withLock(() => {
    const result = {};
    let modern;
    for (const entry of MATRIX) {
      if (entry.dir !== REPO) installFixture(entry, log);
      if (entry.node !== 'repo') modern ??= ensureModernNode(log);
      const node = entry.node === 'repo' ? process.execPath : modern;
      const version = JSON.parse(readFileSync(join(vitestDir(entry), 'package.json'), 'utf8')).version;
      result[entry.name] = { vitest: vitestDir(entry), node, version };
    }
    return result;
  });
}

function installFixture(entry, log) {
  const lock = join(entry.dir, 'package-lock.json');
  const stamp = join(entry.dir, 'node_modules', '.package-lock.json');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  log(`installing the Vitest ${entry.name} fixture (npm ci in ${entry.dir})`);
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], {
    cwd: entry.dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
}

/** A Node that Vitest 5 accepts (^22.12 || ^24 || >=26): this one if it qualifies, else Node 24. */
function ensureModernNode(log) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if ((major === 22 && minor >= 12) || major >= 24) return process.execPath;
  return ensureNode(NODE_MAJOR, { log });
}

/** mkdir as a cross-process lock; a lock older than 10 minutes is a crashed installer's. */
function withLock(fn) {
  const lock = join(HERE, '.install-lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  const result = ensureMatrix();
  for (const [name, { version, node }] of Object.entries(result)) {
    process.stdout.write(`vitest ${name}: ${version} on ${execFileSync(node, ['--version']).toString().trim()}\n`);
  }
  process.stdout.write(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
