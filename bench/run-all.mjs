#!/usr/bin/env node
// Runs every benchmark in bench/ (each *.mjs file here except this one), one after another, passing the
// arguments through: `npm run bench -- --write` saves every result to bench/results/, `-- --quick` is a
// fast smoke run. Exits non-zero if any benchmark failed.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const self = basename(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((name) => name.endsWith('.mjs') && name !== self)
  .sort();

const failed = [];
for (const name of benches) {
  console.log(`\n## ${name}\n`);
  const begun = Date.now();
  const result = spawnSync(process.execPath, [join(here, name), ...args], { stdio: 'inherit' });
  const seconds = ((Date.now() - begun) / 1000).toFixed(1);
  if (result.status !== 0) {
    failed.push(name);
    console.log(`\n${name} failed (${result.signal ?? `exit ${result.status}`}) after ${seconds} s`);
  } else console.log(`\n(${name}: ${seconds} s)`);
}
console.log(
  failed.length === 0
    ? `\nall ${benches.length} benchmarks ran`
    : `\n${failed.length} of ${benches.length} failed: ${failed.join(', ')}`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
