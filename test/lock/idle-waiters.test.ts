import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { ticketsIn } from '../conformance/helpers.js';
import { REPO, waitFor } from '../support/processes.js';
import { loggingJob, logLines, QueueHarness, startTicks } from '../support/queue-runs.js';

// Issue 13 item 12: a waiting run does no periodic work while nothing changes, the waiter next in line
// included. A SIGKILLed owner changes no file, so Node waiters used to poll (every 100 ms when next, every
// 2 s behind); now the helper (`seq-test-subreaper --watch-owners`) holds a pidfd per owner they depend on
// and tells them when one ends. Wakeups are counted, not timed: the sum of voluntary context switches of
// every thread of the waiter's tree over a window in which nothing changes.

const HELPER = join(REPO, 'packages', 'core', 'dist', 'seq-test-subreaper');
const usable = process.platform === 'linux' && existsSync(HELPER);

/** Every pid in the tree below `pid` (itself included). */
function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    for (const task of safeList(`/proc/${all[i]}/task`)) {
      const children = safeRead(`/proc/${all[i]}/task/${task}/children`).trim();
      if (children) all.push(...children.split(' ').map(Number));
    }
  }
  return all;
}

/** Voluntary context switches (each one a sleep that ended: a wakeup) of every thread of every process. */
function wakeups(pids: number[]): number {
  let sum = 0;
  for (const pid of pids)
    for (const task of safeList(`/proc/${pid}/task`)) {
      const match = /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(safeRead(`/proc/${pid}/task/${task}/status`));
      sum += match ? Number(match[1]) : 0;
    }
  return sum;
}

const safeList = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
const safeRead = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the waiter's tree has a quiet window of 2 s (at most `QUIET_MAX` wakeups: a late GC of a fresh
 * Node may add one or two), trying up to 8 windows, and returns the fewest seen. A 100 ms poll makes >= 20
 * per window whatever the load; an event-driven waiter makes none. The windows are a measurement, not a
 * wait for something to happen: nothing changes in the queue meanwhile.
 */
async function quietest(pid: number): Promise<number> {
  let fewest = Infinity;
  for (let window = 0; window < 8 && fewest > QUIET_MAX; window++) {
    const pids = tree(pid);
    const before = wakeups(pids);
    await pause(2000);
    fewest = Math.min(fewest, wakeups(pids) - before);
  }
  return fewest;
}
const QUIET_MAX = 3;

describe.runIf(usable)('idle waiters wait without periodic work', () => {
  const harness = new QueueHarness();
  afterEach(() => {
    expect(harness.sandbox.cleanup()).toBe(0);
  });
  const { setup, run, queue } = harness;
  const job = loggingJob;
  const lines = logLines;
  /** A holder whose command logs that it runs, then sleeps until killed. */
  const sleepingHolder = async (env: NodeJS.ProcessEnv, log: string) => {
    const holder = run(['--quiet', '--', 'sh', '-c', `echo holder >> ${log}; exec sleep 300`], env);
    await waitFor(() => lines(log).includes('holder'), 60_000, 'the holder to run');
    return holder;
  };

  it('the next waiter and the one after it make no wakeups while nothing changes', async () => {
    const { key, env, log } = setup('quiet');
    const holder = await sleepingHolder(env, log);
    const [next, after] = await queue(key, env, log, ['w1', 'w2']);
    expect(await quietest(next?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    expect(await quietest(after?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    holder.child.kill('SIGTERM');
    await Promise.all([holder, next, after].map((w) => w?.finished));
  });

  it('a holder SIGKILLed while the next waiter sleeps without a poll: the waiter runs', async () => {
    const { key, env, log } = setup('holder-killed');
    const holder = await sleepingHolder(env, log);
    const [next, after] = await queue(key, env, log, ['w1', 'w2']);
    // Asleep without a timer: only the owner watch can tell it that the holder is gone.
    expect(await quietest(next?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    holder.child.kill('SIGKILL');
    const results = await Promise.all([next, after].map((w) => w?.finished));
    expect(results.map((r) => r?.code)).toEqual([0, 0]);
    expect(lines(log)).toEqual(['holder', 'w1', 'w2']);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 0, 60_000, 'the dead ticket removed');
  });

  it('a waiter SIGKILLed ahead of a sleeping one: its ticket is removed and the one behind goes on', async () => {
    const { key, env, log, gate } = setup('waiter-killed');
    const holder = run(['--quiet', '--', ...job(log, 'holder', gate)], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const [victim, behind] = await queue(key, env, log, ['w1', 'w2']);
    expect(await quietest(behind?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    victim?.child.kill('SIGKILL');
    // The one behind notices (its owner watch), removes the dead ticket and is next now: two tickets left.
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 2, 60_000, 'the dead ticket removed');
    writeFileSync(gate, '');
    const results = await Promise.all([holder, behind].map((w) => w?.finished));
    expect(results.map((r) => r?.code)).toEqual([0, 0]);
    expect(lines(log)).toEqual(['holder', 'w2']);
  });

  it('a joiner killed while choosing its number: the waiter next in line is woken by its end', async () => {
    const { key, env, log } = setup('chooser');
    // A live choosing marker with nothing ahead: the waiter must wait for it (a joiner choosing its number
    // may take a smaller one). Its owner is a plain sleep, which removes nothing when it dies.
    const dir = join(harness.sandbox.stateDir, keyDirName(key));
    execFileSync('mkdir', [
      '-p',
      '-m',
      '700',
      harness.sandbox.stateDir,
      dir,
      join(dir, 'choosing'),
      join(dir, 'tickets'),
    ]);
    const chooser = harness.sandbox.start(['300'], { file: 'sleep' });
    const pid = chooser.child.pid as number;
    const token = `${pid}.${startTicks(pid)}.${randomBytes(6).toString('hex')}`;
    writeFileSync(join(dir, 'choosing', `${token}.json`), JSON.stringify({ v: 1, token, pid, start: startTicks(pid) }));
    const waiter = run(['--quiet', '--', ...job(log, 'waiter')], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the waiter queued');
    expect(await quietest(waiter.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    expect(lines(log)).toEqual([]);
    chooser.child.kill('SIGKILL');
    expect((await waiter.finished).code).toBe(0);
    expect(lines(log)).toEqual(['waiter']);
  });

  it('without the helper (SEQ_TEST_NO_SUBREAPER=1) the next waiter still notices a SIGKILLed holder', async () => {
    const { key, env: keyEnv, log } = setup('no-helper');
    const env = { ...keyEnv, SEQ_TEST_NO_SUBREAPER: '1' };
    const holder = await sleepingHolder(env, log);
    const [next] = await queue(key, env, log, ['w1']);
    holder.child.kill('SIGKILL');
    expect((await next?.finished)?.code).toBe(0);
    expect(lines(log)).toEqual(['holder', 'w1']);
  });
});

describe.runIf(usable)('seq-test-subreaper --watch-owners', () => {
  it('reports owners that end, and those already gone, per generation; EOF ends it', async () => {
    const { spawn } = await import('node:child_process');
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const watcher = spawn(HELPER, ['--watch-owners'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    watcher.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise((resolve) => watcher.on('exit', (code) => resolve(code)));
    try {
      // A pid that cannot exist (above the kernel's limit) is reported gone at once.
      watcher.stdin.write(`watch 1 ${sleeper.pid} 99999999\n`);
      await waitFor(() => out.includes('watching 1\n'), 60_000, 'the first set watched');
      expect(out).toBe('gone 1 99999999\nwatching 1\n');
      sleeper.kill('SIGKILL');
      await waitFor(() => out.includes(`gone 1 ${sleeper.pid}\n`), 60_000, 'the end of the sleeper');
      watcher.stdin.write('watch 2\n');
      await waitFor(() => out.endsWith('watching 2\n'), 60_000, 'the empty set watched');
      watcher.stdin.end();
      expect(await exited).toBe(0);
    } finally {
      sleeper.kill('SIGKILL');
      watcher.kill('SIGKILL');
    }
  });
});
