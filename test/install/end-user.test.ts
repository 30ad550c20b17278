import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * seq-test as a user gets it: every package packed with `npm pack`, the tarballs installed with npm into a
 * fresh project outside this repository (with Vitest and Jest from the registry), and there `seq-test run`,
 * `seq-test exec`, a Vitest run with the plugin and a Jest run with the wrapper, each checked for its real
 * effect (queueing, reaping). Then the same with the platform helper broken in each way a machine can
 * break it: the command still runs, one warning, leftovers still ended, doctor names the problem.
 *
 * Slow (packing, and an npm install that may reach the registry): a minute or more; see the README tiers.
 */

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARCH = process.arch;
const HELPER_PACKAGE = `@seq-test/helper-linux-${ARCH}`;
const OTHER_ARCH = ARCH === 'x64' ? 'arm64' : 'x64';
const VITEST_VERSION = JSON.parse(readFileSync(join(REPO, 'node_modules', 'vitest', 'package.json'), 'utf8')).version;
const JEST_VERSION = JSON.parse(readFileSync(join(REPO, 'test', 'jest', 'matrix', 'jest30', 'package.json'), 'utf8'))
  .dependencies.jest;

let root: string;
let tarballs: string;
let project: string;
let stateDir: string;
let helperBinary: string;
let pristineHelper: string;
let counter = 0;
const started: ChildProcess[] = [];
const escapees: number[] = [];

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, SEQ_TEST_STATE_DIR: stateDir, CI: '1', ...extra };
  for (const key of Object.keys(base)) if (key.startsWith('SEQ_TEST_TOKEN')) delete base[key];
  delete base.SEQ_TEST_NO_SUBREAPER;
  delete base.SEQ_TEST_SUBREAPER;
  delete base.SEQ_TEST_KEY;
  delete base.VITEST;
  delete base.VITEST_WORKER_ID;
  delete base.VITEST_POOL_ID;
  delete base.NODE_OPTIONS;
  return base;
}

const bin = (name: string) => join(project, 'node_modules', '.bin', name);

function run(file: string, args: string[], extra: NodeJS.ProcessEnv = {}) {
  return spawnSync(file, args, { cwd: project, env: env(extra), encoding: 'utf8', timeout: 240_000 });
}

function start(
  file: string,
  args: string[],
): { child: ChildProcess; done: Promise<number | null>; stderr: () => string } {
  const child = spawn(file, args, { cwd: project, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.resume();
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, done, stderr: () => stderr };
}

async function until(what: string, probe: () => boolean, timeoutMs = 120_000): Promise<void> {
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
async function escapeeEnded(pid: number, marker: string): Promise<boolean> {
  for (let waited = 0; waited < 10_000 && escapeeAlive(pid, marker); waited += 20) await sleep(20);
  return !escapeeAlive(pid, marker);
}

/** A marker no one else uses: the escapee is `sleep <marker>`, long enough to be a leftover. */
function marker(): string {
  counter += 1;
  return `${900000 + (process.pid % 10000) * 10 + counter}`;
}

function waitingTickets(): number {
  const status = run(process.execPath, [bin('seq-test'), 'status', '--json']);
  const report = JSON.parse(status.stdout);
  return report.queues
    .flatMap((q: { tickets: { state: string }[] }) => q.tickets)
    .filter((t: { state: string }) => t.state === 'waiting').length;
}

/** Holds the lock with `seq-test run` until `release` is called. */
async function holdLock(name: string) {
  const gate = join(project, `${name}.release`);
  const holder = start(bin('seq-test'), ['run', '--', 'node', 'hold.mjs', `${name}.held`, gate]);
  await until(`${name} to hold the lock`, () => existsSync(join(project, `${name}.held`)));
  return {
    holder,
    release: () => writeFileSync(gate, ''),
  };
}

function packAll(): string[] {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--workspaces', '--json', '--pack-destination', tarballs], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as { filename: string; name: string; files: { path: string }[]; version: string }[];
  for (const arch of [ARCH, OTHER_ARCH]) {
    packed.push(
      ...JSON.parse(
        execFileSync('npm', ['pack', '--json', '--pack-destination', tarballs], {
          cwd: join(REPO, 'packages', 'helpers', `linux-${arch}`),
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      ),
    );
  }
  return packed.map((p) => {
    expect(p.version, `${p.name} version`).toBe(packed[0]?.version);
    const files = p.files.map((f) => f.path);
    expect(files, `${p.name} files`).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    return p.filename.replace(/^@/, '').replace('/', '-');
  });
}

describe.runIf(process.platform === 'linux')('installed from packed tarballs, as a user would', () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'seq-test-install-'));
    tarballs = join(root, 'tarballs');
    project = join(root, 'project');
    stateDir = join(root, 'state');
    mkdirSync(tarballs);
    mkdirSync(project);
    const names = packAll();
    const ours = names.filter((n) => !n.includes(`helper-linux-${OTHER_ARCH}`)).map((n) => join(tarballs, n));
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'end-user-project', private: true, type: 'module', version: '1.0.0' }, null, 2),
    );
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        ...ours,
        `vitest@${VITEST_VERSION}`,
        `jest@${JEST_VERSION}`,
      ],
      { cwd: project, env: env(), stdio: ['ignore', 'ignore', 'inherit'] },
    );
    helperBinary = join(project, 'node_modules', ...HELPER_PACKAGE.split('/'), 'seq-test-subreaper');
    pristineHelper = join(root, 'pristine-helper');
    copyFileSync(helperBinary, pristineHelper);
    writeFileSync(
      join(project, 'escape.mjs'),
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
      join(project, 'hold.mjs'),
      `import { existsSync, writeFileSync } from 'node:fs';
// Says it started, then holds until the gate file exists.
writeFileSync(process.argv[2], String(Date.now()));
const timer = setInterval(() => { if (existsSync(process.argv[3])) { clearInterval(timer); } }, 20);
`,
    );
  }, 900_000);

  afterAll(() => {
    for (const child of started) if (child.exitCode === null && child.pid) child.kill('SIGKILL');
    for (const pid of escapees) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('installs the helper package for this machine, and core lists every platform', () => {
    const core = JSON.parse(readFileSync(join(project, 'node_modules', '@seq-test', 'core', 'package.json'), 'utf8'));
    expect(Object.keys(core.optionalDependencies).sort()).toEqual([
      '@seq-test/helper-linux-arm64',
      '@seq-test/helper-linux-x64',
    ]);
    expect(existsSync(helperBinary)).toBe(true);
    expect(existsSync(join(project, 'node_modules', '@seq-test', `helper-linux-${OTHER_ARCH}`))).toBe(false);
    expect(readdirSync(join(project, 'node_modules', '@seq-test', 'core', 'dist'))).not.toContain('seq-test-subreaper');
    const doctor = JSON.parse(run(bin('seq-test'), ['doctor', '--json']).stdout);
    expect(doctor.helper).toMatchObject({ path: helperBinary, source: 'platform-package' });
  });

  it('seq-test exec runs the command with its exit code and ends the escapee it left', async () => {
    const sleepFor = marker();
    const pidFile = join(project, `exec-${sleepFor}.pid`);
    const result = run(bin('seq-test'), ['exec', '--linger', '0', '--', 'node', 'escape.mjs', sleepFor, pidFile, '3']);
    const escapee = Number(readFileSync(pidFile, 'utf8'));
    escapees.push(escapee);
    expect(result.status, result.stderr).toBe(3);
    expect(result.stderr).not.toMatch(/warning/);
    expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
  });

  it('seq-test run queues: the second run starts only after the first ends', async () => {
    const first = await holdLock('run-a');
    const second = start(bin('seq-test'), ['run', '--', 'node', 'hold.mjs', 'run-b.held', join(project, 'never')]);
    await until('the second run to queue', () => waitingTickets() === 1);
    expect(existsSync(join(project, 'run-b.held'))).toBe(false);
    first.release();
    expect(await first.holder.done).toBe(0);
    await until('the second run to start', () => existsSync(join(project, 'run-b.held')));
    writeFileSync(join(project, 'never'), '');
    expect(await second.done).toBe(0);
    expect(Number(readFileSync(join(project, 'run-b.held'), 'utf8'))).toBeGreaterThanOrEqual(
      Math.floor(statSync(join(project, 'run-a.release')).mtimeMs),
    );
  });

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

  /** Starts the runner while `seq-test run` holds the lock: it must queue, then run and end the escapee. */
  async function waitsItsTurnAndReaps(name: string, pidFile: string, sleepFor: string, argv: string[]) {
    const holder = await holdLock(`${name}-holder`);
    const runner = start(bin(name), argv);
    await until(`${name} to queue`, () => waitingTickets() === 1);
    expect(existsSync(pidFile)).toBe(false);
    holder.release();
    expect(await holder.holder.done).toBe(0);
    expect(await runner.done, runner.stderr()).toBe(0);
    const escapee = Number(readFileSync(pidFile, 'utf8'));
    escapees.push(escapee);
    expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
  }

  it('a Vitest run with the plugin waits its turn and ends the escapee its test left', async () => {
    const sleepFor = marker();
    const pidFile = join(project, `vitest-${sleepFor}.pid`);
    writeFileSync(
      join(project, 'vitest.config.mjs'),
      `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({ plugins: [seqTest()], test: { include: ['vt/**/*.test.mjs'] } });
`,
    );
    mkdirSync(join(project, 'vt'), { recursive: true });
    const imports = `import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { expect, test } from 'vitest';`;
    writeFileSync(join(project, 'vt', 'escape.test.mjs'), escapeeTest(imports, sleepFor, pidFile));
    await waitsItsTurnAndReaps('vitest', pidFile, sleepFor, ['run']);
  });

  it('a Jest run with the wrapper waits its turn and ends the escapee its test left', async () => {
    const sleepFor = marker();
    const pidFile = join(project, `jest-${sleepFor}.pid`);
    writeFileSync(
      join(project, 'jest.config.cjs'),
      `const { withSeqTest } = require('@seq-test/jest');
module.exports = withSeqTest({ testEnvironment: 'node', roots: ['<rootDir>/jt'], testMatch: ['**/*.test.cjs'] });
`,
    );
    mkdirSync(join(project, 'jt'), { recursive: true });
    const imports = `const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');`;
    writeFileSync(join(project, 'jt', 'escape.test.cjs'), escapeeTest(imports, sleepFor, pidFile));
    await waitsItsTurnAndReaps('jest', pidFile, sleepFor, ['--config', 'jest.config.cjs']);
  });

  describe('with the platform helper broken', () => {
    const breakages: { name: string; cause: RegExp; breakIt: () => void }[] = [
      {
        name: 'wrong architecture',
        cause: /is built for (aarch64|x86-64), but this machine is \w+ \(wrong architecture\)/,
        breakIt: () =>
          copyFileSync(join(REPO, 'packages', 'helpers', `linux-${OTHER_ARCH}`, 'seq-test-subreaper'), helperBinary),
      },
      {
        name: 'missing loader',
        cause: /needs the loader \/lib\/ld-seq-test-missing\.so\.1, which this system does not have/,
        breakIt: () =>
          execFileSync('cc', [
            '-O2',
            '-Wl,--dynamic-linker=/lib/ld-seq-test-missing.so.1',
            '-o',
            helperBinary,
            join(REPO, 'packages', 'core', 'native', 'subreaper.c'),
          ]),
      },
      { name: 'not executable', cause: /is not executable/, breakIt: () => chmodSync(helperBinary, 0o644) },
      { name: 'absent', cause: /does not exist/, breakIt: () => rmSync(helperBinary) },
      {
        name: 'a fake binary that fails the handshake',
        cause: /did not answer the handshake \(printed "hello", exited 0\)/,
        breakIt: () => {
          rmSync(helperBinary);
          writeFileSync(helperBinary, '#!/bin/sh\necho hello\n');
          chmodSync(helperBinary, 0o755);
        },
      },
    ];

    it.each(breakages)(
      '$name: the command runs, one warning, the escapee still ended, doctor names it',
      async ({ cause, breakIt }) => {
        breakIt();
        try {
          const sleepFor = marker();
          const pidFile = join(project, `broken-${sleepFor}.pid`);
          const result = run(bin('seq-test'), [
            'exec',
            '--linger',
            '0',
            '--',
            'node',
            'escape.mjs',
            sleepFor,
            pidFile,
            '3',
          ]);
          const escapee = Number(readFileSync(pidFile, 'utf8'));
          escapees.push(escapee);
          expect(result.status, result.stderr).toBe(3);
          const warnings = result.stderr.split('\n').filter((line) => /warning/.test(line));
          expect(warnings).toHaveLength(1);
          expect(warnings[0]).toMatch(
            /^seq-test: warning: running without the subreaper helper: the helper from @seq-test\/helper-linux-/,
          );
          expect(warnings[0]).toMatch(cause);
          expect(warnings[0]).toMatch(/Fix: /);
          // The setsid'd escapee keeps the run's token: the token layer ends it without the helper.
          expect(await escapeeEnded(escapee, sleepFor)).toBe(true);
          const doctor = JSON.parse(run(bin('seq-test'), ['doctor', '--json']).stdout);
          expect(doctor.helper.path).toBeNull();
          expect(doctor.findings).toContainEqual(
            expect.objectContaining({
              check: 'helper.unusable',
              severity: 'warning',
              message: expect.stringMatching(cause),
            }),
          );
        } finally {
          rmSync(helperBinary, { force: true });
          copyFileSync(pristineHelper, helperBinary);
          chmodSync(helperBinary, 0o755);
        }
      },
    );
  });
});
