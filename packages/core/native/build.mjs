// Builds the Linux subreaper helper from every .c file here: subreaper.c, with launcher.c and owner-watch.c
// (its other modes). The package ships them all (`files`: native/*.c).
//
//   node native/build.mjs                       into ../dist/ with cc (or $CC): the development checkout,
//                                               and the from-source fallback on platforms without a
//                                               prebuilt package (run it inside node_modules/@seq-test/core)
//   node native/build.mjs --all                 that, and every platform package below (`npm run build`)
//   node native/build.mjs --target linux-x64    a static binary into packages/helpers/linux-x64/
//   node native/build.mjs --target linux-arm64  (musl-gcc or a cross gcc; one binary for glibc and musl)
//   node native/build.mjs --target <t> --verify fails unless that package holds a static binary of its
//                                               architecture (run before `npm pack`)
//
// Building never fails `npm run build`: without a compiler it prints what to install, and seq-test runs
// without the helper (see docs/process-tree.md). --verify is what stops a package shipping without one.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sources = readdirSync(here)
  .filter((file) => file.endsWith('.c'))
  .sort()
  .map((file) => join(here, file));
const FLAGS = ['-O2', '-Wall', '-Wextra'];

/** Per target: the ELF machine it must have, and the compilers that build it static, best first. */
const TARGETS = {
  'linux-x64': {
    machine: 62,
    compilers: { x64: ['musl-gcc', 'x86_64-linux-musl-gcc'], other: ['x86_64-linux-musl-gcc', 'x86_64-linux-gnu-gcc'] },
  },
  'linux-arm64': {
    machine: 183,
    compilers: {
      arm64: ['musl-gcc', 'aarch64-linux-musl-gcc'],
      other: ['aarch64-linux-musl-gcc', 'aarch64-linux-gnu-gcc'],
    },
  },
};

const args = process.argv.slice(2);
const targetIndex = args.indexOf('--target');
const target = targetIndex >= 0 ? args[targetIndex + 1] : undefined;

if (target === undefined) {
  buildForThisMachine();
  // In the checkout (packages/helpers/ beside core) `npm run build` builds the platform packages too.
  if (args.includes('--all') && existsSync(join(here, '..', '..', 'helpers')))
    for (const name of Object.keys(TARGETS)) buildPackage(name);
} else if (!(target in TARGETS)) {
  console.error(`seq-test: unknown helper target ${target}; known: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
} else if (args.includes('--verify')) {
  verify(target);
} else {
  buildPackage(target);
}

function buildForThisMachine() {
  if (process.platform !== 'linux') {
    console.log('seq-test: the subreaper helper is Linux-only; skipped');
    return;
  }
  const out = join(here, '..', 'dist', 'seq-test-subreaper');
  mkdirSync(dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  const result = spawnSync(cc, [...FLAGS, '-o', out, ...sources], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.warn(
      `seq-test: could not build the subreaper helper with ${cc} (${result.error?.message ?? `exit ${result.status}`}); install a C compiler (Debian: apt-get install gcc) and run this again. Until then seq-test runs without it`,
    );
  }
}

function packageBinary(name) {
  return join(here, '..', '..', 'helpers', name, 'seq-test-subreaper');
}

function buildPackage(name) {
  const { compilers } = TARGETS[name];
  const out = packageBinary(name);
  const candidates = [
    ...(process.env[`CC_${name.replace('-', '_').toUpperCase()}`]
      ? [process.env[`CC_${name.replace('-', '_').toUpperCase()}`]]
      : []),
    ...(name === `linux-${process.arch}` && process.platform === 'linux' ? compilers[process.arch] : compilers.other),
  ];
  for (const cc of candidates) {
    const result = spawnSync(cc, [...FLAGS, '-static', '-s', '-o', out, ...sources], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (result.status === 0) {
      const problem = checkBinary(name);
      if (problem) {
        console.warn(`seq-test: ${cc} built ${out}, but it ${problem}`);
        continue;
      }
      console.log(`seq-test: built ${out} with ${cc} (static)`);
      return;
    }
  }
  console.warn(
    `seq-test: could not build the ${name} helper (tried ${candidates.join(', ')}); on Debian: apt-get install musl-tools gcc-aarch64-linux-gnu. The package cannot be packed until it is built`,
  );
}

function verify(name) {
  const problem = checkBinary(name);
  if (problem) {
    console.error(
      `seq-test: ${packageBinary(name)} ${problem}; build it first: node ${join(here, 'build.mjs')} --target ${name}`,
    );
    process.exit(1);
  }
}

/** Undefined when the package's binary exists, is static and is built for its target; else what is wrong. */
function checkBinary(name) {
  const path = packageBinary(name);
  if (!existsSync(path)) return 'does not exist';
  const header = Buffer.alloc(64);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return 'is not a 64-bit ELF file';
    const machine = header.readUInt16LE(18);
    if (machine !== TARGETS[name].machine) return `is built for ELF machine ${machine}, not ${TARGETS[name].machine}`;
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return 'is dynamically linked';
    return undefined;
  } finally {
    closeSync(fd);
  }
}
