// Versions, checks, builds and packs every published package, in step (see docs/releasing.md).
//
//   npm run release                        check, build, pack into ./release/
//   npm run release -- 0.2.0               set every package (and their dependencies on each other) to
//                                          0.2.0 first, and update package-lock.json
//   npm run release -- --out /tmp/packs    pack elsewhere
//
// It publishes nothing: it prints the `npm publish` commands, in dependency order, for a human to run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, 'release'));
const version = args.find((a, i) => !a.startsWith('--') && (outIndex < 0 || i !== outIndex + 1));
const REPOSITORY = 'https://github.com/seq-test/seq-test';

function fail(message) {
  console.error(`release: ${message}`);
  process.exit(1);
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const writeJson = (file, value) => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

/** Every published package: the workspaces, then the platform helpers (not workspaces: see pack-manifest.mjs). */
function packages() {
  const dirs = [];
  for (const pattern of readJson(join(root, 'package.json')).workspaces) {
    const base = join(root, pattern.replace(/\/\*$/, ''));
    for (const name of readdirSync(base).sort())
      if (existsSync(join(base, name, 'package.json'))) dirs.push(join(base, name));
  }
  const helpers = join(root, 'packages', 'helpers');
  for (const name of readdirSync(helpers).sort()) dirs.push(join(helpers, name));
  return dirs
    .map((dir) => ({ dir, file: join(dir, 'package.json'), manifest: readJson(join(dir, 'package.json')) }))
    .filter((p) => !p.manifest.private);
}

const all = packages();
const names = new Set(all.map((p) => p.manifest.name));
const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'];

if (version) {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) fail(`${version} is not a version (x.y.z[-pre])`);
  for (const p of all) {
    p.manifest.version = version;
    for (const field of DEPENDENCY_FIELDS)
      for (const dep of Object.keys(p.manifest[field] ?? {})) if (names.has(dep)) p.manifest[field][dep] = version;
    writeJson(p.file, p.manifest);
  }
  execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

// Everything that must hold before a package leaves this repository.
const expected = all[0]?.manifest.version;
const license = readFileSync(join(root, 'LICENSE'), 'utf8');
const problems = [];
for (const { dir, manifest } of all) {
  const where = relative(root, dir);
  if (manifest.version !== expected) problems.push(`${manifest.name} is at ${manifest.version}, not ${expected}`);
  for (const field of DEPENDENCY_FIELDS)
    for (const [dep, spec] of Object.entries(manifest[field] ?? {}))
      if (names.has(dep) && spec !== expected) problems.push(`${manifest.name} wants ${dep}@${spec}, not ${expected}`);
  if (!existsSync(join(dir, 'README.md'))) problems.push(`${where} has no README.md`);
  else if (/\]\((?!https?:|#)/.test(readFileSync(join(dir, 'README.md'), 'utf8')))
    problems.push(`${where}/README.md has a relative link (it would not resolve on the registry's page)`);
  if (!existsSync(join(dir, 'LICENSE')) || readFileSync(join(dir, 'LICENSE'), 'utf8') !== license)
    problems.push(`${where}/LICENSE is missing or differs from the root LICENSE`);
  if (manifest.license !== 'MIT') problems.push(`${manifest.name} is not marked MIT`);
  if (manifest.repository?.url !== `git+${REPOSITORY}.git` || manifest.repository?.directory !== where)
    problems.push(`${manifest.name}: repository must be ${REPOSITORY} with directory ${where}`);
  if (!manifest.homepage || !manifest.bugs?.url) problems.push(`${manifest.name} lacks homepage or bugs`);
}
if (problems.length > 0) fail(`not releasable:\n  ${problems.join('\n  ')}`);
if (args.includes('--check')) {
  console.log(`release: ${all.length} packages at ${expected}, all in step`);
  process.exit(0);
}

execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const packed = [];
for (const { dir, manifest } of all) {
  // One package at a time so that each one's prepack runs (core lists the helpers; a helper verifies its binary).
  const [result] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  packed.push({ name: manifest.name, file: join(out, result.filename), dependsOnOurs: dependsOnOurs(manifest) });
}
console.log(`\nrelease: ${packed.length} packages at ${expected} in ${out}:`);
for (const p of packed) console.log(`  ${p.file}`);
// Dependencies first, so that nobody installs a package whose dependency is not on the registry yet.
packed.sort((a, b) => a.dependsOnOurs - b.dependsOnOurs);
console.log('\nto publish (in this order):');
for (const p of packed) console.log(`  npm publish ${p.file} --access public`);

/** How deep a package sits in our own dependency graph (core depends on the helpers once packed). */
function dependsOnOurs(manifest) {
  const direct = DEPENDENCY_FIELDS.flatMap((f) => Object.keys(manifest[f] ?? {})).filter((d) => names.has(d));
  if (manifest.name === '@seq-test/core')
    direct.push(...all.map((p) => p.manifest.name).filter((n) => n.includes('/helper-')));
  const depths = direct.map((d) => dependsOnOurs(all.find((p) => p.manifest.name === d).manifest));
  return depths.length === 0 ? 0 : 1 + Math.max(...depths);
}
