import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readSync, statSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, SeqTestError } from './errors.js';
import { identityOf } from './identity.js';
import { endProcessesSync, runProcesses, sleepSync } from './ownership.js';
import { say } from './say.js';
import { createToken, TOKEN_ENV } from './token.js';

/**
 * Finding the Linux subreaper helper, and deciding whether to trust it.
 *
 * Candidates, first usable wins: SEQ_TEST_SUBREAPER (an explicit path; if it is unusable that is an error,
 * not a fallback), the platform package `@seq-test/helper-<platform>-<arch>` (a static binary installed
 * through core's optionalDependencies, the way esbuild ships native code), then a build from source next
 * to core's bundle (`native/build.mjs`: the development checkout, and platforms without a package).
 * A candidate is trusted only after it answers the handshake (`--handshake`), once per process: a binary
 * of the wrong architecture, with a missing loader, not executable or not ours never breaks a run; the run
 * goes on without the helper and the caller is warned once, with the cause and the fix.
 *
 * Without the helper seq-test still tracks the process group, the session, the token and every descendant
 * it sees; only an escapee that both empties its environment and leaves the session before the next sweep
 * is missed.
 */

/** The report protocol this core speaks (subreaper.c PROTOCOL). */
export const HELPER_PROTOCOL = 2;
export const HELPER_OVERRIDE_ENV = 'SEQ_TEST_SUBREAPER';
export const HELPER_DISABLE_ENV = 'SEQ_TEST_NO_SUBREAPER';
const BINARY = 'seq-test-subreaper';
/** Generous: a loaded 2-core machine, or an emulated binary, answers in well under a second. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export type HelperSource = 'override' | 'platform-package' | 'source-build';

export interface HelperCandidate {
  source: HelperSource;
  /** Where it was looked for (for the platform package: the package name when it is not installed). */
  path: string;
  /** Undefined when it answered the handshake. */
  problem?: string;
}

export interface HelperChoice {
  /** The helper to use, or undefined: run without it. */
  path: string | undefined;
  source: HelperSource | undefined;
  /** One sentence: which helper is used and why, or why none is. */
  reason: string;
  /** Set when a helper was expected but none is usable: worth one warning. */
  problem?: { cause: string; fix: string };
  /** Every candidate looked at, in order. */
  candidates: HelperCandidate[];
}

/** The platform package for this machine, e.g. @seq-test/helper-linux-x64. */
export function helperPackageName(platform: string = process.platform, cpu: string = arch()): string {
  return `@seq-test/helper-${platform}-${cpu}`;
}

/** Platforms that have a prebuilt helper package. */
export const HELPER_PACKAGES = ['linux-x64', 'linux-arm64'] as const;

const probed = new Map<string, string | undefined>();

/**
 * Runs the handshake once per binary (per path, size and mtime) in this process. Returns undefined when
 * the helper answered, or why it cannot be used. Whatever the binary started is ended before returning.
 */
export function probeHelper(path: string): string | undefined {
  let key: string;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return 'is not a file';
    key = `${path}\0${stat.size}\0${stat.mtimeMs}\0${stat.mode}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message;
  }
  if (probed.has(key)) return probed.get(key);
  const problem = runHandshake(path);
  probed.set(key, problem);
  return problem;
}

/**
 * Why this file must not even be started, from its first bytes. Starting a file the kernel cannot run is
 * not harmless: on ENOEXEC, execvp() (what Node's spawn uses) hands it to /bin/sh, which then runs the
 * binary's bytes as shell commands (a foreign-architecture helper "printed shell garbage", and can create
 * files). So only an ELF file of this machine with its loader present, or a #! script, is started.
 */
function refuseBeforeRunning(path: string): string | undefined {
  const elf = readElf(path);
  const machine = MACHINES[process.arch];
  if (elf && machine !== undefined && elf.machine !== machine)
    return `is built for ${MACHINE_NAMES[elf.machine] ?? `ELF machine ${elf.machine}`}, but this machine is ${process.arch} (wrong architecture)`;
  if (elf?.interpreter && !existsSync(elf.interpreter))
    return `needs the loader ${elf.interpreter}, which this system does not have (a dynamically linked build from another libc)`;
  if (!elf && !startsWithShebang(path))
    return 'is not a program for this machine (neither an ELF file of this machine nor a #! script)';
  return undefined;
}

function startsWithShebang(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head.toString('latin1') === '#!';
  } catch {
    return true; // unreadable: let the kernel say why (EACCES)
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function runHandshake(path: string): string | undefined {
  const refused = refuseBeforeRunning(path);
  if (refused) return refused;
  // Output goes to a file, not a pipe: something the binary leaves running cannot hold the probe open.
  // Created exclusively and owner-only, and unlinked at once: nothing is left behind, whatever happens.
  const outFile = join(tmpdir(), `seq-test-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  const out = openSync(outFile, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  unlinkSync(outFile);
  const self = identityOf(process.pid);
  const token = self ? createToken(self) : undefined;
  try {
    const result = spawnSync(path, ['--handshake'], {
      cwd: tmpdir(), // not the project: a binary that is not ours gets nowhere to write by accident
      stdio: ['ignore', out, out],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(token ? { [TOKEN_ENV]: token.value } : {}) },
      timeout: HANDSHAKE_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    const head = Buffer.alloc(400);
    const text = head.subarray(0, readSync(out, head, 0, 400, 0)).toString('utf8');
    const answer = text.trim().split('\n')[0] ?? '';
    const problem = judge(result, answer, text);
    // A real helper starts nothing here; anything else gets no benefit of the doubt.
    if (problem && token) endProbeLeftovers(token.value);
    return problem;
  } finally {
    closeSync(out);
  }
}

/**
 * Ends what a failed handshake left. Swept until two sweeps in a row find nothing: a process caught in the
 * middle of execve() may have no readable environment for that instant and is only seen by a later sweep.
 */
function endProbeLeftovers(token: string): void {
  for (let round = 0, quiet = 0; round < 20 && quiet < 2; round++) {
    const found = runProcesses({ tokens: [token] });
    quiet = found.length === 0 ? quiet + 1 : 0;
    endProcessesSync(found, 0);
    if (quiet < 2) sleepSync(10);
  }
}

function judge(result: ReturnType<typeof spawnSync>, answer: string, text: string): string | undefined {
  if (answer === `${BINARY} ${HELPER_PROTOCOL} ready` && result.status === 0) return undefined;
  const error = result.error as NodeJS.ErrnoException | undefined;
  if (error?.code === 'ETIMEDOUT') return `did not answer the handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`;
  if (error?.code === 'EACCES') return 'is not executable (permission denied)';
  if (error) return `cannot be started (${error.code ?? error.message})`;
  const refused = new RegExp(`^${BINARY} (\\d+) error subreaper (\\d+)$`).exec(answer);
  if (refused)
    return `cannot become a child subreaper here (prctl errno ${refused[2]}: a kernel older than 3.4, or an emulator such as qemu-user)`;
  const other = new RegExp(`^${BINARY} (\\d+) `).exec(answer);
  if (other && Number(other[1]) !== HELPER_PROTOCOL)
    return `speaks helper protocol ${other[1]}, this @seq-test/core speaks ${HELPER_PROTOCOL} (versions out of step)`;
  const said = text.trim() ? `printed ${JSON.stringify(text.trim().slice(0, 80))}` : 'printed nothing';
  const ended = result.signal ? `died of ${result.signal}` : `exited ${result.status}`;
  return `did not answer the handshake (${said}, ${ended}): not a seq-test helper`;
}

/** ELF e_machine values of the architectures Node runs on that matter here. */
const MACHINES: Partial<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40, riscv64: 243 };
const MACHINE_NAMES: Record<number, string> = { 62: 'x86-64', 183: 'aarch64', 3: 'x86', 40: 'arm', 243: 'riscv64' };

/** The machine and program interpreter of a little-endian ELF file, or undefined when it is not one. */
export function readElf(path: string): { machine: number; interpreter?: string } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const header = Buffer.alloc(64);
    if (readSync(fd, header, 0, 64, 0) < 64 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
    if (header[5] !== 1) return undefined; // big-endian: not one of ours
    const wide = header[4] === 2;
    const machine = header.readUInt16LE(18);
    const phoff = wide ? Number(header.readBigUInt64LE(32)) : header.readUInt32LE(28);
    const phentsize = header.readUInt16LE(wide ? 54 : 42);
    const phnum = header.readUInt16LE(wide ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const entry = i * phentsize;
      if (table.readUInt32LE(entry) !== 3) continue; // PT_INTERP
      const offset = wide ? Number(table.readBigUInt64LE(entry + 8)) : table.readUInt32LE(entry + 4);
      const size = wide ? Number(table.readBigUInt64LE(entry + 32)) : table.readUInt32LE(entry + 16);
      const name = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, name, 0, name.length, offset);
      return { machine, interpreter: name.toString('latin1').replace(/\0.*$/s, '') };
    }
    return { machine };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const resolvedPackages = new Map<string, string | undefined>();

/**
 * Where the platform package's binary is, or undefined when the package is not installed. Resolved once per
 * process: every run asks (prepareExec), and a resolution costs 0.1-0.2 ms (a failed one walks every
 * node_modules up the tree), the larger part of what execTree had come to cost more than before.
 */
function platformPackageBinary(name: string): string | undefined {
  if (resolvedPackages.has(name)) return resolvedPackages.get(name);
  let binary: string | undefined;
  try {
    binary = join(dirname(createRequire(import.meta.url).resolve(`${name}/package.json`)), BINARY);
  } catch {
    binary = undefined;
  }
  resolvedPackages.set(name, binary);
  return binary;
}

/** A helper built from source next to the bundle (dist/); the second candidate serves tests of the sources. */
function sourceBuildBinary(): string | undefined {
  for (const candidate of [`./${BINARY}`, `../dist/${BINARY}`]) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** How to build the helper from source in this installation. */
function buildCommand(): string {
  return `node ${fileURLToPath(new URL('../native/build.mjs', import.meta.url))}`;
}

/**
 * Decides which helper a run uses. Throws SeqTestError (exit 125) when SEQ_TEST_SUBREAPER names something
 * unusable: an explicit choice that silently fell back would hide the mistake.
 */
export function chooseHelper(env: NodeJS.ProcessEnv = process.env): HelperChoice {
  const none = (reason: string): HelperChoice => ({ path: undefined, source: undefined, reason, candidates: [] });
  if (process.platform !== 'linux') return none(`the subreaper helper is Linux-only (this is ${process.platform})`);
  if (env[HELPER_DISABLE_ENV] === '1') return none(`disabled by ${HELPER_DISABLE_ENV}=1`);
  const override = env[HELPER_OVERRIDE_ENV];
  if (override !== undefined && override !== '') {
    const problem = isAbsolute(override) ? probeHelper(override) : 'is not an absolute path';
    if (problem)
      throw new SeqTestError(
        `${HELPER_OVERRIDE_ENV}=${override} ${problem}; point it at a seq-test-subreaper binary (${buildCommand()} builds one) or unset it`,
        EXIT.USAGE,
      );
    const candidates = [{ source: 'override' as const, path: override }];
    return { path: override, source: 'override', reason: `${HELPER_OVERRIDE_ENV} names it`, candidates };
  }
  const candidates: HelperCandidate[] = [];
  const name = helperPackageName();
  const packaged = platformPackageBinary(name);
  if (packaged) {
    const problem = probeHelper(packaged);
    candidates.push({ source: 'platform-package', path: packaged, ...(problem ? { problem } : {}) });
    if (!problem) return { path: packaged, source: 'platform-package', reason: `from ${name}`, candidates };
  } else {
    candidates.push({ source: 'platform-package', path: name, problem: 'is not installed' });
  }
  const built = sourceBuildBinary();
  if (built) {
    const problem = probeHelper(built);
    candidates.push({ source: 'source-build', path: built, ...(problem ? { problem } : {}) });
    if (!problem) return { path: built, source: 'source-build', reason: 'built from source', candidates };
  }
  const first = candidates[0] as HelperCandidate;
  const prebuilt = (HELPER_PACKAGES as readonly string[]).includes(`${process.platform}-${arch()}`);
  const cause = packaged
    ? `the helper from ${name} (${packaged}) ${first.problem}`
    : prebuilt
      ? `${name} is not installed (optional dependencies skipped?)`
      : `there is no prebuilt helper for ${process.platform}-${arch()}`;
  const fix = packaged
    ? `reinstall seq-test so that npm picks the package for this machine (npm install), or build one: ${buildCommand()}`
    : prebuilt
      ? `install it (npm install ${name}; do not omit optional dependencies), or build one: ${buildCommand()}`
      : `build one from source (needs a C compiler): ${buildCommand()}`;
  const sourceBuild = candidates.find((c) => c.source === 'source-build');
  const extra = sourceBuild ? `; the source build ${sourceBuild.path} ${sourceBuild.problem}` : '';
  return {
    path: undefined,
    source: undefined,
    reason: `no usable helper: ${cause}${extra}`,
    problem: { cause: `${cause}${extra}`, fix },
    candidates,
  };
}

const warned = new Set<string>();

/**
 * Path of the helper a run should use, or undefined: not Linux, disabled with SEQ_TEST_NO_SUBREAPER=1, or
 * none usable (then `warn` is called once per process with the cause and the fix).
 */
export function subreaperPath(
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = say,
): string | undefined {
  const choice = chooseHelper(env);
  if (choice.problem && !warned.has(choice.problem.cause)) {
    warned.add(choice.problem.cause);
    warn(
      `warning: running without the subreaper helper: ${choice.problem.cause}. Escapees that empty their environment and leave the session may be missed. Fix: ${choice.problem.fix} (or set ${HELPER_DISABLE_ENV}=1 to run without it quietly)`,
    );
  }
  return choice.path;
}
