import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, type Started, type TestSandbox, waitFor } from '../support/processes.js';
// @ts-expect-error plain ES module shared with the benchmark, no types
import { ensureJest as ensureJestInstall, JEST_VERSIONS } from './matrix/install.mjs';

export const EXAMPLE = join(REPO, 'examples', 'jest');
export const EXAMPLE_CONFIG = join(EXAMPLE, 'jest.config.js');
export const FIXTURES = join(REPO, 'test', 'jest', 'fixtures');
export const VERSIONS: string[] = JEST_VERSIONS;
/** npm ci of one Jest version on a cold cache takes ~40 s on a loaded 2-core machine. */
export const INSTALL_TIMEOUT_MS = 300_000;

export interface JestInstall {
  name: string;
  bin: string;
  cacheDir: string;
  version(): string;
}

/**
 * Installs (once) and returns one Jest version, after checking that its binary, started from the repository
 * root as the tests start it, really is that version (jest's bin defers to a `jest` it can resolve from the
 * working directory, so a stray install there would silently test something else).
 */
export async function ensureJest(name: string): Promise<JestInstall> {
  const jest = (await ensureJestInstall(name)) as JestInstall;
  const reported = spawnSync(process.execPath, [jest.bin, '--version'], { cwd: REPO, encoding: 'utf8' }).stdout.trim();
  if (reported !== jest.version()) {
    throw new Error(
      `${jest.bin} --version printed "${reported}", expected ${jest.version()} (a jest installed above ${REPO}?)`,
    );
  }
  return jest;
}

/** A parent that starts `node <its arguments>` on the same output and waits for ever (an npx stand-in). */
const WAITING_PARENT =
  "require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); setInterval(() => {}, 1e9);";

/** A stamp written by the example (test/stamps.js, test/global-setup.js, test/global-teardown.js). */
export interface Stamp {
  file?: string;
  hook?: 'globalSetup' | 'globalTeardown';
  pid: number;
  start?: number;
  end?: number;
  at?: number;
  token?: string | null;
  serverPid?: number | null;
}

/**
 * One Jest run of the example in a sandbox: private state dir and lock key, its own stamps file, plain
 * output. Everything it starts carries the sandbox marker, so the test can find (and clean up) exactly that.
 */
export class JestRun {
  readonly stamps: string;
  readonly started: Started;
  /** Jest's --cacheDirectory for this run (its haste map is written there once built). */
  readonly cacheDir: string;

  constructor(
    readonly sandbox: TestSandbox,
    readonly jest: JestInstall,
    args: string[],
    options: {
      config?: string;
      env?: NodeJS.ProcessEnv;
      name?: string;
      viaCli?: boolean;
      /** Started by a parent process that only waits for it (as npx does): `started` is that parent. */
      viaParent?: boolean;
      /**
       * An empty Jest cache: no timings of earlier runs, so plain Jest does start workers for a few fast
       * files when -w allows (with timings it may run them in band on its own, proving nothing).
       */
      freshCache?: boolean;
    } = {},
  ) {
    this.stamps = join(sandbox.dir, `stamps-${options.name ?? 'run'}.jsonl`);
    this.cacheDir = options.freshCache ? join(sandbox.dir, `jest-cache-${options.name ?? 'run'}`) : this.jest.cacheDir;
    const jestArgs = [
      this.jest.bin,
      '--config',
      options.config ?? EXAMPLE_CONFIG,
      '--cacheDirectory',
      this.cacheDir,
      ...args,
    ];
    const env = {
      SEQ_TEST_KEY: `jest-e2e-${sandbox.marker}`,
      EXAMPLE_STAMPS: this.stamps,
      FORCE_COLOR: '0',
      NO_COLOR: '1',
      CI: 'true',
      ...options.env,
    };
    this.started = options.viaCli
      ? sandbox.start(['run', '--', process.execPath, ...jestArgs], { env, cwd: REPO })
      : options.viaParent
        ? sandbox.start(['-e', WAITING_PARENT, ...jestArgs], { env, cwd: REPO, file: process.execPath })
        : sandbox.start(jestArgs, { env, cwd: REPO, file: process.execPath });
  }

  /** Resolves when the Jest process itself has exited (its output pipes may stay open in its leftovers). */
  exited(): Promise<void> {
    const child = this.started.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /**
   * Exit code and signal of Jest, once it has exited and its output is in (or, if a process it left behind
   * still holds its output pipes, 10 s after it exited: then the test's own checks will name that process).
   */
  async done(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.exited();
    await Promise.race([this.started.finished, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const child = this.started.child;
    return { code: child.exitCode, signal: child.signalCode };
  }

  get pid(): number {
    return this.started.child.pid as number;
  }

  get output(): string {
    return this.started.output.stdout + this.started.output.stderr;
  }

  /** Waits for a condition while this run is alive; fails with its output if it ends first or takes long. */
  async waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 90_000): Promise<T> {
    let ended = false;
    void this.exited().then(() => {
      ended = true;
    });
    return waitFor(
      () => {
        const value = probe();
        if (value) return value;
        if (ended) throw new Error(`Jest ended before ${what}:\n${this.output}`);
        return undefined;
      },
      timeoutMs,
      what,
    ).catch((error: Error) => {
      throw error.message.startsWith('Jest ended') ? error : new Error(`${error.message}\n${this.output}`);
    });
  }

  readStamps(): Stamp[] {
    if (!existsSync(this.stamps)) return [];
    return readFileSync(this.stamps, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Stamp);
  }

  fileStamps(): Required<Pick<Stamp, 'file' | 'pid' | 'start' | 'end'>>[] {
    return this.readStamps().filter((s) => s.file) as Required<Pick<Stamp, 'file' | 'pid' | 'start' | 'end'>>[];
  }

  hook(name: 'globalSetup' | 'globalTeardown'): Stamp | undefined {
    return this.readStamps().find((s) => s.hook === name);
  }
}

/** Live processes of the sandbox whose command line is exactly `sleep 300` (the example's leftover). */
export function leftoverSleeps(sandbox: TestSandbox): number[] {
  return sandbox.ours().filter((pid) => commandLine(pid) === 'sleep 300');
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** Ticket files left in the sandbox's state dir (any key, nested queues included). */
export function ticketsLeft(sandbox: TestSandbox): string[] {
  const found: string[] = [];
  const visit = (dir: string) => {
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (dir.endsWith('tickets') && entry.name.endsWith('.json')) found.push(path);
    }
  };
  visit(sandbox.stateDir);
  return found;
}

/** Waits until nothing the sandbox started is alive any more (Jest's own exit can lag its output). */
export async function nothingLeft(sandbox: TestSandbox, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => sandbox.ours().length === 0, timeoutMs, `no process left (still: ${describe(sandbox)})`).catch(
    () => {
      throw new Error(`processes left behind: ${describe(sandbox)}`);
    },
  );
}

function describe(sandbox: TestSandbox): string {
  return sandbox
    .ours()
    .map((pid) => `${pid} ${commandLine(pid)}`)
    .join(', ');
}

/** True when no two [start, end] intervals overlap. */
export function overlapping(intervals: Array<{ start: number; end: number; label?: string }>): string[] {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  const clashes: string[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (next.start < prev.end)
      clashes.push(
        `${prev.label ?? '?'} [${prev.start}, ${prev.end}] overlaps ${next.label ?? '?'} [${next.start}, ${next.end}]`,
      );
  }
  return clashes;
}
