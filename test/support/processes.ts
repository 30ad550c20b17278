import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO, 'packages', 'cli', 'dist', 'bin.js');

/**
 * Every process a test starts carries SEQ_TEST_TEST_MARKER=<id> in its environment (it is inherited by
 * everything below), so cleanup can find exactly what this test started and nothing else, and end it by pid.
 */
export const MARKER_ENV = 'SEQ_TEST_TEST_MARKER';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  finished: Promise<Finished>;
  /** Resolves when the process itself exits, even while something it left behind still holds its pipes. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class TestSandbox {
  readonly marker = randomUUID();
  readonly dir = mkdtempSync(join(tmpdir(), 'seq-test-t-'));
  /** A private state dir and key so tests holding the lock never meet another test's queue. */
  readonly stateDir = join(this.dir, 'state');

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, [MARKER_ENV]: this.marker, SEQ_TEST_STATE_DIR: this.stateDir };
    for (const key of Object.keys(env)) if (key.startsWith('SEQ_TEST_TOKEN')) delete env[key];
    // The developer's terminal size must not reach the tools under test (pytest sizes its output by COLUMNS).
    delete env.COLUMNS;
    delete env.LINES;
    return { ...env, ...extra };
  }

  /** Starts `node seq-test <args>` (or any file with `file`). */
  start(
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; file?: string; stdin?: 'ignore' | 'pipe' } = {},
  ): Started {
    const file = options.file ?? process.execPath;
    const argv = options.file ? args : [CLI, ...args];
    const child = spawn(file, argv, {
      cwd: options.cwd ?? this.dir,
      env: this.env(options.env),
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '' };
    child.stdout?.on('data', (d: Buffer) => {
      output.stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output.stderr += d.toString();
    });
    // A program that cannot start (ENOENT) gets 'error' and never 'exit': it finishes at once, saying why,
    // instead of leaving the test to its timeout.
    const failed = new Promise<Error>((resolve) => child.once('error', resolve));
    const finished = new Promise<Finished>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, ...output }));
      void failed.then((error) =>
        resolve({ code: null, signal: null, stdout: output.stdout, stderr: `${output.stderr}${error.message}` }),
      );
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
      void failed.then(() => resolve({ code: null, signal: null }));
    });
    return { child, output, finished, exited };
  }

  /** Runs seq-test to completion. */
  async run(args: string[], options: Parameters<TestSandbox['start']>[1] = {}): Promise<Finished> {
    return this.start(args, options).finished;
  }

  /** Pids of live processes started by this sandbox (zombies excluded). */
  ours(): number[] {
    return markedProcesses(this.marker);
  }

  /** Ends, by pid, whatever this sandbox started that is still alive; returns how many there were. */
  cleanup(): number {
    const left = endMarked(this.marker);
    rmSync(this.dir, { recursive: true, force: true });
    return left;
  }
}

/** Pids of live processes (zombies excluded) whose environment has MARKER_ENV=`marker`. */
export function markedProcesses(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (environ.includes(`${MARKER_ENV}=${marker}`)) pids.push(Number(name));
    } catch {}
  }
  return pids;
}

/**
 * SIGKILLs, by pid, every live process marked with `marker`; returns how many there were. The way tests end
 * what they started: never a pid or a process group recorded earlier, which may have been handed to a
 * stranger since (on this machine pids wrap around at 32768 within minutes under test load).
 */
export function endMarked(marker: string): number {
  const left = markedProcesses(marker);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return left.length;
}

/**
 * process.kill for one process the test named by a pid it read or recorded; false once it is gone. Refuses
 * what is not a pid: kill(2) takes 0 as the caller's own process group (the test runner, and the shell job
 * that started it, with every run started beside it), a negative number as a group and -1 as every process
 * we may signal. A pid file read too early gives 0 (Number('')): that once SIGKILLed a whole job of three
 * test runs on this machine.
 */
export function killPid(pid: number, signal: NodeJS.Signals | 0 = 'SIGKILL'): boolean {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`killPid: ${pid} is not a process id`);
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The least time any waitFor gives its event. waitFor returns as soon as the event happens, so its timeout
 * only bounds a failure: it must hold on a 2-core machine shared with other test runs (load 20 and more
 * seen), where starting or ending a process can take seconds. A caller's shorter figure is raised to this.
 */
export const WAIT_AT_LEAST_MS = 60_000;

export async function waitFor<T>(
  probe: () => T | undefined | false,
  timeoutMs = WAIT_AT_LEAST_MS,
  what = 'condition',
): Promise<T> {
  const bound = Math.max(timeoutMs, WAIT_AT_LEAST_MS);
  const deadline = Date.now() + bound;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${bound} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
