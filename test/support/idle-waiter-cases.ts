import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { afterEach, expect, it } from 'vitest';
import { ticketsIn } from '../conformance/helpers.js';
import { type Started, waitFor } from './processes.js';
import { loggingJob, logLines, QueueHarness, queueRuns, startTicks } from './queue-runs.js';
import { QUIET_MAX, quietest } from './wakeups.js';

/** Starts a waiter of the implementation under test that appends `name` to `log` once it holds. */
export type StartWaiter = (harness: QueueHarness, env: NodeJS.ProcessEnv, log: string, name: string) => Started;

/**
 * Issue 13 item 12, the cases every waiter must pass whatever its language (call inside a describe): asleep
 * with no periodic work while nothing changes (wakeups counted: wakeups.ts), and still told at once of what
 * changes no file: a SIGKILLed holder, a waiter ahead SIGKILLed, a joiner killed while choosing its number.
 * The holders are `seq-test run`. Returns the harness and helpers for the caller's own cases.
 */
export function idleWaiterCases(waiter: StartWaiter) {
  const harness = new QueueHarness();
  afterEach(() => {
    expect(harness.sandbox.cleanup()).toBe(0);
  });
  const { setup, run } = harness;
  const queue = (key: string, env: NodeJS.ProcessEnv, log: string, names: string[]) =>
    queueRuns(harness.sandbox.stateDir, key, names, (name) => waiter(harness, env, log, name));
  /** A holder whose command logs that it runs, then sleeps until killed. */
  const sleepingHolder = async (env: NodeJS.ProcessEnv, log: string) => {
    const holder = run(['--quiet', '--', 'sh', '-c', `echo holder >> ${log}; exec sleep 300`], env);
    await waitFor(() => logLines(log).includes('holder'), 60_000, 'the holder to run');
    return holder;
  };

  it('the next waiter and the one after it make no wakeups while nothing changes', async () => {
    const { key, env, log } = setup('quiet');
    const holder = await sleepingHolder(env, log);
    const [next, after] = await queue(key, env, log, ['w1', 'w2']);
    expect(await quietest(next?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    expect(await quietest(after?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    holder.child.kill('SIGTERM');
    const results = await Promise.all([next, after].map((w) => w?.finished));
    expect(results.map((r) => r?.code)).toEqual([0, 0]);
    expect(logLines(log)).toEqual(['holder', 'w1', 'w2']);
  });

  it('a holder SIGKILLed while the next waiter sleeps without a poll: the waiters run, in order', async () => {
    const { key, env, log } = setup('holder-killed');
    const holder = await sleepingHolder(env, log);
    const [next, after] = await queue(key, env, log, ['w1', 'w2']);
    // Asleep without a timer: only a pidfd on the holder (the waiter's own, or its owner watch's) can tell it.
    expect(await quietest(next?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    holder.child.kill('SIGKILL');
    const results = await Promise.all([next, after].map((w) => w?.finished));
    expect(results.map((r) => r?.code)).toEqual([0, 0]);
    expect(logLines(log)).toEqual(['holder', 'w1', 'w2']);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 0, 60_000, 'the dead ticket removed');
  });

  it('a waiter SIGKILLed ahead of a sleeping one: its ticket is removed and the one behind goes on', async () => {
    const { key, env, log, gate } = setup('waiter-killed');
    const holder = run(['--quiet', '--', ...loggingJob(log, 'holder', gate)], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const [victim, behind] = await queue(key, env, log, ['w1', 'w2']);
    expect(await quietest(behind?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    victim?.child.kill('SIGKILL');
    // The one behind is told, removes the dead ticket and is next now: two tickets left.
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 2, 60_000, 'the dead ticket removed');
    writeFileSync(gate, '');
    const results = await Promise.all([holder, behind].map((w) => w?.finished));
    expect(results.map((r) => r?.code)).toEqual([0, 0]);
    expect(logLines(log)).toEqual(['holder', 'w2']);
  });

  it('a joiner killed while choosing its number: the waiter next in line is woken by its end', async () => {
    const { key, env, log } = setup('chooser');
    // A live choosing marker with nothing ahead: the waiter must wait for it (a joiner choosing its number
    // may take a smaller one). Its owner is a plain sleep, which removes nothing when it dies.
    const dir = join(harness.sandbox.stateDir, keyDirName(key));
    for (const sub of ['choosing', 'tickets']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    const chooser = harness.sandbox.start(['300'], { file: 'sleep' });
    const pid = chooser.child.pid as number;
    const token = `${pid}.${startTicks(pid)}.${randomBytes(6).toString('hex')}`;
    writeFileSync(join(dir, 'choosing', `${token}.json`), JSON.stringify({ v: 1, token, pid, start: startTicks(pid) }));
    const [waiter] = await queue(key, env, log, ['waiter']);
    expect(await quietest(waiter?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    expect(logLines(log)).toEqual([]);
    chooser.child.kill('SIGKILL');
    expect((await waiter?.finished)?.code).toBe(0);
    expect(logLines(log)).toEqual(['waiter']);
  });

  return { harness, queue, sleepingHolder };
}
