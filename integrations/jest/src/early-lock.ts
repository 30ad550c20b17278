import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import { say } from '@seq-test/core';
import {
  ignoresHangup,
  type LockHandle,
  loadProjectConfig,
  onProcessExit,
  projectKey,
  Queue,
  type QueueEntry,
  type RunToken,
  TOKEN_ENV,
} from '@seq-test/core/internal';
import { shared } from './state.js';

/**
 * Waiting for the lock while Jest evaluates the config file, before it builds its haste map, transforms,
 * resolvers and reporters: a Jest that waits there costs ~29 MiB (PSS, the thread included) instead of
 * ~69 MiB in our global setup (bench/waiting-cost.mjs).
 *
 * Config evaluation is synchronous, so the wait runs on a worker thread (same process, so the ticket's
 * owner is Jest itself) while the main thread sleeps on an Atomics cell. Only where that is safe:
 *  - Jest's own CLI is evaluating the config (not an editor or a tool that merely loads it), for a run of
 *    tests (not --watch, --listTests, --showConfig, …), outside another seq-test run (nested runs do not wait);
 *  - no one handles SIGINT/SIGTERM yet: a signal while the main thread sleeps then ends Jest at once, as
 *    plain Jest, and its dead ticket is removed by the next reader of the queue.
 * It queues even when the queue looks free: runs started together (agents, a script) would all see it free,
 * and all wait, full-sized, in the global setup. Our global setup adopts the held lock (same key), or
 * releases it and queues as before (another key). The haste map is then built under the lock too.
 */
export interface EarlyOptions {
  key?: string | undefined;
}

interface WorkerResult {
  ok: boolean;
  message?: string;
  key?: string;
  token?: RunToken;
  nested?: boolean;
  waitedMs?: number;
  queueDir?: string;
  ticket?: Pick<QueueEntry, 'name' | 'file' | 'number' | 'token' | 'owner'>;
}

const RESULT_BYTES = 64 * 1024;
const SKIP_FLAGS = new Set([
  '--watch',
  '--watchAll',
  '--listTests',
  '--showConfig',
  '--clearCache',
  '--version',
  '-v',
  '--help',
  '-h',
  '--init',
]);

export function waitEarly(options: EarlyOptions): void {
  const state = shared();
  if (state.early || (state.run && !state.run.finished) || !worthWaitingEarly()) return;
  let key: string | undefined;
  let slots: number | undefined;
  try {
    const settings = loadProjectConfig(process.cwd())?.config;
    // "slots": "auto" admits by memory, with the fingerprint of the run the global setup measures and
    // records: the wait happens there (a waiting Jest then costs its haste map too).
    if (settings?.slots === 'auto') return;
    key = options.key ?? (process.env.SEQ_TEST_KEY || settings?.key);
    slots = settings?.slots;
  } catch {
    return; // the global setup will report whatever is wrong, as before
  }
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const out = new Uint8Array(new SharedArrayBuffer(RESULT_BYTES));
  const worker = new Worker(join(__dirname, 'early-lock-worker.js'), {
    workerData: {
      key,
      slots,
      cwd: process.cwd(),
      command: commandLine(),
      tty: Boolean(process.stderr.isTTY),
      parent: ignoresHangup() ? 0 : process.ppid, // nohup: detached on purpose
      flag,
      out,
    },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  // No timeout: the worker always sets the flag, and nothing on this thread could run meanwhile anyway.
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0);
  const text = Buffer.from(out).toString('utf8').replace(/\0+$/, '');
  const result = JSON.parse(text) as WorkerResult;
  if (!result.ok || !result.token || !result.ticket || !result.queueDir || !result.key) {
    say(`error: ${result.message ?? 'the early wait for the lock failed'}`);
    throw new Error(`@seq-test/jest: ${result.message ?? 'the early wait for the lock failed'}`);
  }
  state.early = adoptable(result as Required<WorkerResult>);
}

function adoptable(result: Required<WorkerResult>): LockHandle {
  const queue = new Queue(result.queueDir);
  const ticket = { ...result.ticket, ticket: undefined, alive: true } as QueueEntry;
  // The worker's own exit hook is gone: the ticket is this thread's now, released at exit like any other.
  const forgetExit = onProcessExit('release', () => queue.remove(ticket));
  return {
    key: result.key,
    token: result.token,
    nested: result.nested,
    waitedMs: result.waitedMs,
    ticket,
    queue,
    release: () => {
      queue.remove(ticket);
      forgetExit();
    },
  };
}

/** The lock taken early, for the global setup: when it is for the key the setup would use; else released. */
export function adoptEarlyLock(key: string | undefined, rootDir: string): LockHandle | undefined {
  const state = shared();
  const early = state.early;
  state.early = undefined;
  if (!early) return undefined;
  let wanted: string | undefined;
  try {
    wanted = projectKey({ key, cwd: rootDir });
  } catch {}
  if (wanted === early.key) return early;
  early.release();
  return undefined;
}

function worthWaitingEarly(): boolean {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return false;
  if (process.env.JEST_WORKER_ID || process.env.SEQ_TEST_DISABLE === '1' || process.env[TOKEN_ENV]) return false;
  if (process.listenerCount('SIGINT') > 0 || process.listenerCount('SIGTERM') > 0) return false;
  const argv = process.argv.slice(2);
  if (argv.some((arg) => SKIP_FLAGS.has(arg.split('=')[0] as string))) return false;
  const marker = `${sep}jest-cli${sep}`;
  const cache = createRequire(join(__dirname, 'index.js')).cache;
  return Object.keys(cache).some((file) => file.includes(marker));
}

/** What the ticket shows in `seq-test status` and in other waiters' queue line (as run.ts). */
function commandLine(): string {
  return ['jest', ...process.argv.slice(2)].join(' ');
}
