import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * What the end-user install tests share, whatever package manager installed the packages: packing every
 * package, the fixture files of the fresh project, and the checks of real effects (queueing, reaping) that
 * every install must pass. end-user.test.ts (npm, plus the broken-helper cases), end-user-pnpm.test.ts and
 * end-user-yarn.test.ts each set up with `endUserInstall`, install the tarballs their own way in its
 * `install` step and then call `declareEndUserChecks`.
 */

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ARCH = process.arch;
export const HELPER_PACKAGE = `@seq-test/helper-linux-${ARCH}`;
export const OTHER_ARCH = ARCH === 'x64' ? 'arm64' : 'x64';
export const VITEST_VERSION: string = JSON.parse(
  readFileSync(join(REPO, 'node_modules', 'vitest', 'package.json'), 'utf8'),
).version;
export const JEST_VERSION: string = JSON.parse(
  readFileSync(join(REPO, 'test', 'jest', 'matrix', 'jest30', 'package.json'), 'utf8'),
).dependencies.jest;

/** The tarballs by package name, e.g. { 'seq-test': '/tmp/…/seq-test-0.1.0.tgz', '@seq-test/core': … }. */
export type Tarballs = Record<string, string>;

/** Packs every workspace and both platform helpers into `dir`; checks versions in step and the files. */
export function packAll(dir: string): Tarballs {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--workspaces', '--json', '--pack-destination', dir], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as { filename: string; name: string; files: { path: string }[]; version: string }[];
  for (const arch of [ARCH, OTHER_ARCH]) {
    packed.push(
      ...JSON.parse(
        execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
          cwd: join(REPO, 'packages', 'helpers', `linux-${arch}`),
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      ),
    );
  }
  const tarballs: Tarballs = {};
  for (const p of packed) {
    expect(p.version, `${p.name} version`).toBe(packed[0]?.version);
    const files = p.files.map((f) => f.path);
    expect(files, `${p.name} files`).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    tarballs[p.name] = join(dir, p.filename.replace(/^@/, '').replace('/', '-'));
  }
  return tarballs;
}

/**
 * The package.json of a project that uses seq-test as the README says: the CLI, the Vitest plugin and the
 * Jest wrapper (from their tarballs), with Vitest and Jest from the registry; `extra` adds fields.
 */
export function endUserManifest(tarballs: Tarballs, extra: object = {}): string {
  const file = (name: string) => `file:${tarballs[name]}`;
  const manifest = {
    name: 'end-user-project',
    private: true,
    type: 'module',
    version: '1.0.0',
    devDependencies: {
      'seq-test': file('seq-test'),
      '@seq-test/vitest': file('@seq-test/vitest'),
      '@seq-test/jest': file('@seq-test/jest'),
      vitest: VITEST_VERSION,
      jest: JEST_VERSION,
    },
    ...extra,
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Every @seq-test package pointed at its tarball (they are not on the registry yet): overrides, resolutions. */
export function tarballOverrides(tarballs: Tarballs): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tarballs)
      .filter(([name]) => name.startsWith('@seq-test/'))
      .map(([name, path]) => [name, `file:${path}`]),
  );
}

/** Installs a package manager from the registry into `prefix` (never globally); returns its bin directory. */
export function installPackageManager(spec: string, prefix: string, env: NodeJS.ProcessEnv): string {
  execFileSync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', spec], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return join(prefix, 'bin');
}

/** What an install test's beforeAll made: its temporary root (removed after), the tarballs, the project. */
export interface EndUserInstall {
  root: string;
  tarballs: Tarballs;
  project: EndUserProject;
}

export interface InstallSteps {
  /** Names the temporary root: seq-test-install-<name>-…. */
  name: string;
  /** The program that runs the project's commands (see EndUserProject), given the root; default node_modules/.bin. */
  launcher?: (root: string) => string;
  /** Installs the tarballs into the (empty) project directory, the package manager's way. */
  install(made: EndUserInstall): void;
}

/**
 * An install test's frame, declared in its describe: beforeAll packs every package into a temporary root,
 * makes an empty project beside them, runs `steps.install` and writes the checks' fixture files; afterAll
 * ends what the checks started and removes the root. Returns what beforeAll made, for the tests to read.
 */
export function endUserInstall(steps: InstallSteps): () => EndUserInstall {
  let root: string | undefined;
  let project: EndUserProject | undefined;
  let made: EndUserInstall | undefined;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), `seq-test-install-${steps.name}-`));
    const tarballDir = join(root, 'tarballs');
    mkdirSync(tarballDir);
    const tarballs = packAll(tarballDir);
    project = new EndUserProject(join(root, 'project'), join(root, 'state'), steps.launcher?.(root));
    mkdirSync(project.dir);
    steps.install({ root, tarballs, project });
    project.writeFixtures();
    made = { root, tarballs, project };
  }, 900_000);
  afterAll(() => {
    project?.cleanup();
    if (root) rmSync(root, { recursive: true, force: true });
  });
  return () => {
    if (!made) throw new Error('the install failed in beforeAll (see its error above)');
    return made;
  };
}

/** Runs a package manager's install in the project, its output hidden but for errors. */
export function runInstall(project: EndUserProject, file: string, args: string[], env = project.env()): void {
  execFileSync(file, args, { cwd: project.dir, env, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A project outside the repository with seq-test installed, and what its tests need to drive it. */
export class EndUserProject {
  private counter = 0;
  private readonly started: ChildProcess[] = [];
  /** Escapees still running when their pid was read, by pid and start time (see cleanup). */
  private readonly escapees: { pid: number; start: string }[] = [];
  private readonly gates: string[] = [];

  /**
   * `launcher`: the program that runs the project's commands (`yarn`, under Plug'n'Play, which has no
   * node_modules/.bin); without it they run from node_modules/.bin.
   */
  constructor(
    readonly dir: string,
    readonly stateDir: string,
    private readonly launcher?: string,
  ) {}

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const base: NodeJS.ProcessEnv = { ...process.env, SEQ_TEST_STATE_DIR: this.stateDir, CI: '1', ...extra };
    for (const key of Object.keys(base)) if (key.startsWith('SEQ_TEST_TOKEN')) delete base[key];
    delete base.SEQ_TEST_NO_SUBREAPER;
    delete base.SEQ_TEST_SUBREAPER;
    delete base.SEQ_TEST_KEY;
    delete base.VITEST;
    delete base.VITEST_WORKER_ID;
    delete base.VITEST_POOL_ID;
    delete base.NODE_OPTIONS;
    // A package manager that started this test (npm run, pnpm run) leaves its own config in npm_* variables.
    for (const key of Object.keys(base)) if (key.startsWith('npm_')) delete base[key];
    return base;
  }

  /** How to run the project's own command `name`: node_modules/.bin/<name> (a symlink with npm, a shell
   * shim with pnpm), or through the launcher. */
  private command(name: string, args: string[]): [string, string[]] {
    if (this.launcher) return [this.launcher, [name, ...args]];
    return [join(this.dir, 'node_modules', '.bin', name), args];
  }

  /** Runs the project's own command `name`, in the project or in `cwd` (a directory inside it). */
  runBin(name: string, args: string[], cwd = this.dir) {
    const [file, argv] = this.command(name, args);
    return spawnSync(file, argv, { cwd, env: this.env(), encoding: 'utf8', timeout: 240_000 });
  }

  startBin(name: string, args: string[]) {
    return this.start(...this.command(name, args));
  }

  run(file: string, args: string[], extra: NodeJS.ProcessEnv = {}) {
    return spawnSync(file, args, { cwd: this.dir, env: this.env(extra), encoding: 'utf8', timeout: 240_000 });
  }

  start(file: string, args: string[]): { child: ChildProcess; done: Promise<number | null>; stderr: () => string } {
    const child = spawn(file, args, { cwd: this.dir, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.started.push(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.resume();
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, done, stderr: () => stderr };
  }

  /** A marker no one else uses: the escapee is `sleep <marker>`, long enough to be a leftover. */
  marker(): string {
    this.counter += 1;
    return `${900000 + (process.pid % 10000) * 10 + this.counter}`;
  }

  /** Reads the escapee's pid from its file and remembers it for cleanup. */
  escapee(pidFile: string): number {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const start = startOf(pid);
    if (start !== undefined) this.escapees.push({ pid, start });
    return pid;
  }

  /** `seq-test exec` of a script that leaves a setsid'd escapee and exits 3. */
  execEscapee(name: string) {
    const sleepFor = this.marker();
    const pidFile = join(this.dir, `${name}-${sleepFor}.pid`);
    const argv = ['exec', '--linger', '0', '--', 'node', 'escape.mjs', sleepFor, pidFile, '3'];
    const result = this.runBin('seq-test', argv);
    return { result, escapee: this.escapee(pidFile), sleepFor };
  }

  waitingTickets(): number {
    const status = this.runBin('seq-test', ['status', '--json']);
    const report = JSON.parse(status.stdout);
    return report.queues
      .flatMap((q: { tickets: { state: string }[] }) => q.tickets)
      .filter((t: { state: string }) => t.state === 'waiting').length;
  }

  /** Holds the lock with `seq-test run` until `release` is called. */
  async holdLock(name: string) {
    const gate = this.gate(`${name}.release`);
    const holder = this.startBin('seq-test', ['run', '--', 'node', 'hold.mjs', `${name}.held`, gate]);
    await until(`${name} to hold the lock`, () => existsSync(join(this.dir, `${name}.held`)));
    return { holder, release: () => writeFileSync(gate, '') };
  }

  doctor(): {
    helper: { path: string | null; source: string | null; reason: string };
    findings: { check: string; severity: string; message: string }[];
  } {
    const result = this.runBin('seq-test', ['doctor', '--json']);
    return JSON.parse(result.stdout);
  }

  /** The scripts the checks run: an escapee maker and a lock holder. */
  writeFixtures(): void {
    writeFileSync(
      join(this.dir, 'escape.mjs'),
      `import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
// Leaves a setsid'd sleep behind (a new session: a process-group kill misses it), then exits with argv[4].
const child = spawn('sleep', [process.argv[2]], { detached: true, stdio: 'ignore' });
child.unref();
writeFileSync(process.argv[3], String(child.pid));
process.exit(Number(process.argv[4] ?? 0));
`,
    );
    writeFileSync(
      join(this.dir, 'hold.mjs'),
      `import { existsSync, writeFileSync } from 'node:fs';
// Says it started, then holds until the gate file exists.
writeFileSync(process.argv[2], String(Date.now()));
const timer = setInterval(() => { if (existsSync(process.argv[3])) { clearInterval(timer); } }, 20);
`,
    );
  }

  /** A file that releases a hold.mjs when it exists; cleanup creates every one, so no holder outlives us. */
  gate(name: string): string {
    const path = join(this.dir, name);
    this.gates.push(path);
    return path;
  }

  /**
   * Ends what the checks started: releases every holder (a launcher's child would outlive a kill of the
   * launcher), then ends the runs and any escapee a failed check left, by pid, and only while that pid is
   * still the escapee (same start time): seq-test ended the others minutes ago, and on a busy machine their
   * pids go round to strangers (pid_max is 32768 here).
   */
  cleanup(): void {
    for (const gate of this.gates) writeFileSync(gate, '');
    for (const child of this.started) if (child.exitCode === null && child.pid) child.kill('SIGKILL');
    for (const { pid, start } of this.escapees) {
      if (startOf(pid) !== start) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

/** The start time of a live process (field 22 of /proc/<pid>/stat); undefined when gone or a zombie. */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export async function until(what: string, probe: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether `sleep <marker>` with this pid still runs (zombies count as gone). */
function escapeeAlive(pid: number, marker: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${marker}\0`;
  } catch {
    return false;
  }
}

/** Whether the escapee is gone within a generous bound (a killed process takes a moment to die under load). */
export async function escapeeEnded(pid: number, marker: string): Promise<boolean> {
  for (let waited = 0; waited < 10_000 && escapeeAlive(pid, marker); waited += 20) await sleep(20);
  return !escapeeAlive(pid, marker);
}

/** A test that leaves a setsid'd escapee; `imports` are the test file's module lines for its runner. */
function escapeeTest(imports: string, sleepFor: string, pidFile: string): string {
  return `${imports}

test('leaves an escapee', () => {
  const child = spawn('sleep', ['${sleepFor}'], { detached: true, stdio: 'ignore' });
  child.unref();
  writeFileSync(${JSON.stringify(pidFile)}, String(child.pid));
  expect(child.pid).toBeGreaterThan(0);
});
`;
}

/**
 * The checks every install must pass: `seq-test exec` reaps an escapee and keeps the exit code, `seq-test
 * run` queues, the Vitest plugin and the Jest wrapper wait their turn and end what their tests left.
 * `project` is read when the tests run (it is made in the caller's beforeAll).
 */
export function declareEndUserChecks(project: () => EndUserProject): void {
  it('seq-test exec runs the command with its exit code and ends the escapee it left', async () => {
    const { result, escapee, sleepFor } = project().execEscapee('exec');
    expect(result.status, result.stderr).toBe(3);
    expect(result.stderr).not.toMatch(/warning/);
    expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
  });

  it('seq-test init --pytest vendors the Python modules the CLI package carries (no @seq-test/pytest needed)', () => {
    const p = project();
    // Inside the project, so that Yarn finds it; not a git repository, so init works on this directory.
    const dir = join(p.dir, `py-${p.marker()}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'pytest.ini'), '[pytest]\n');
    const init = p.runBin('seq-test', ['init', '--pytest'], dir);
    expect(init.status, init.stdout + init.stderr).toBe(0);
    for (const name of ['seq_test_lock.py', 'seq_subprocess.py', 'seq_test_plugin.py']) {
      const written = readFileSync(join(dir, 'seq_test_pytest', name), 'utf8');
      const source = readFileSync(join(REPO, 'integrations', 'pytest', 'templates', name), 'utf8');
      expect(written.slice(written.indexOf('\n') + 1), name).toBe(source); // after the generated header
    }
    expect(readFileSync(join(dir, 'conftest.py'), 'utf8')).toContain('pytest_plugins = ["seq_test_pytest"]');
  });

  it('seq-test run queues: the second run starts only after the first ends', async () => {
    const p = project();
    const first = await p.holdLock('run-a');
    const never = p.gate('never');
    const second = p.startBin('seq-test', ['run', '--', 'node', 'hold.mjs', 'run-b.held', never]);
    await until('the second run to queue', () => p.waitingTickets() === 1);
    expect(existsSync(join(p.dir, 'run-b.held'))).toBe(false);
    first.release();
    expect(await first.holder.done).toBe(0);
    await until('the second run to start', () => existsSync(join(p.dir, 'run-b.held')));
    writeFileSync(never, '');
    expect(await second.done).toBe(0);
    expect(Number(readFileSync(join(p.dir, 'run-b.held'), 'utf8'))).toBeGreaterThanOrEqual(
      Math.floor(statSync(join(p.dir, 'run-a.release')).mtimeMs),
    );
  });

  /** Starts the runner while `seq-test run` holds the lock: it must queue, then run and end the escapee. */
  async function waitsItsTurnAndReaps(
    p: EndUserProject,
    name: string,
    pidFile: string,
    sleepFor: string,
    argv: string[],
  ) {
    const holder = await p.holdLock(`${name}-holder`);
    const runner = p.startBin(name, argv);
    await until(`${name} to queue`, () => p.waitingTickets() === 1);
    expect(existsSync(pidFile)).toBe(false);
    holder.release();
    expect(await holder.holder.done).toBe(0);
    expect(await runner.done, runner.stderr()).toBe(0);
    const escapee = p.escapee(pidFile);
    expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
  }

  it('a Vitest run with the plugin waits its turn and ends the escapee its test left', async () => {
    const p = project();
    const sleepFor = p.marker();
    const pidFile = join(p.dir, `vitest-${sleepFor}.pid`);
    writeFileSync(
      join(p.dir, 'vitest.config.mjs'),
      `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({ plugins: [seqTest()], test: { include: ['vt/**/*.test.mjs'] } });
`,
    );
    mkdirSync(join(p.dir, 'vt'), { recursive: true });
    const imports = `import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { expect, test } from 'vitest';`;
    writeFileSync(join(p.dir, 'vt', 'escape.test.mjs'), escapeeTest(imports, sleepFor, pidFile));
    await waitsItsTurnAndReaps(p, 'vitest', pidFile, sleepFor, ['run']);
  });

  it('a Jest run with the wrapper waits its turn and ends the escapee its test left', async () => {
    const p = project();
    const sleepFor = p.marker();
    const pidFile = join(p.dir, `jest-${sleepFor}.pid`);
    writeFileSync(
      join(p.dir, 'jest.config.cjs'),
      `const { withSeqTest } = require('@seq-test/jest');
module.exports = withSeqTest({ testEnvironment: 'node', roots: ['<rootDir>/jt'], testMatch: ['**/*.test.cjs'] });
`,
    );
    mkdirSync(join(p.dir, 'jt'), { recursive: true });
    const imports = `const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');`;
    writeFileSync(join(p.dir, 'jt', 'escape.test.cjs'), escapeeTest(imports, sleepFor, pidFile));
    await waitsItsTurnAndReaps(p, 'jest', pidFile, sleepFor, ['--config', 'jest.config.cjs']);
  });
}
