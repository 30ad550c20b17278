import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { CONTENDER, NO_PYTHON, PYTHON, ticketsIn } from '../conformance/helpers.js';
import { isAlive, REPO, type Started, waitFor } from '../support/processes.js';
import { loggingJob, logLines, QueueHarness, startTicks } from '../support/queue-runs.js';
import { tree } from '../support/wakeups.js';

// Issue 13 item 12: `seq-test run` through the npm bin (packages/cli/bin/seq-test) on Linux, where the
// helper's launcher (packages/core/native/launcher.c) owns the ticket and waits alone, in the kernel, while
// the run is far from the head. Each case checks that the waiter really waited in the launcher (no Node
// process), which fails on the code before it; and that the queue behaves exactly as it does for Node waiters.

const BIN = join(REPO, 'packages', 'cli', 'bin', 'seq-test');
const HELPER = join(REPO, 'packages', 'core', 'dist', 'seq-test-subreaper');
const usable = process.platform === 'linux' && existsSync(HELPER);

/** The launcher waits alone: the process is the helper (comm is cut to 15 bytes) and has no child. */
function waitsInLauncher(pid: number): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return comm === 'seq-test-subrea' && children === '';
  } catch {
    return false;
  }
}

/** Node waits itself under the launcher: below it (Node's tree) a helper runs, the run's parked one. */
function nodeParked(pid: number): boolean {
  return tree(pid)
    .slice(1)
    .some((below) => {
      try {
        return readFileSync(`/proc/${below}/comm`, 'utf8').trim() === 'seq-test-subrea';
      } catch {
        return false;
      }
    });
}

describe.runIf(usable)('seq-test run through its launcher', () => {
  const harness = new QueueHarness(BIN);
  afterEach(() => {
    expect(harness.sandbox.cleanup()).toBe(0);
  });
  const { setup, run, queue } = harness;
  const job = loggingJob;
  const lines = logLines;

  it('keeps FIFO order; runs beyond the next three wait in the launcher, without Node', async () => {
    const { key, env, log, gate } = setup('fifo');
    const holder = run(['--quiet', '--', ...job(log, 'holder', gate)], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const names = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
    const waiters = await queue(key, env, log, names);
    // w1..w3 are within `slots + 2` of the head: Node waits itself; w4..w6 hand the wait over.
    await waitFor(() => waiters.slice(3).every((w) => waitsInLauncher(w.child.pid as number)), 60_000, 'launchers');
    expect(waiters.slice(0, 3).some((w) => waitsInLauncher(w.child.pid as number))).toBe(false);
    writeFileSync(gate, '');
    const results = await Promise.all([holder, ...waiters].map((w) => w.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(lines(log)).toEqual(['holder', ...names]);
    expect(ticketsIn(harness.sandbox.stateDir, key)).toEqual([]);
  });

  it('a waiter SIGKILLed in the launcher leaves a stale ticket that is removed; the queue goes on', async () => {
    const { key, env, log, gate } = setup('kill');
    const holder = run(['--quiet', '--', ...job(log, 'holder', gate)], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const waiters = await queue(key, env, log, ['w1', 'w2', 'w3', 'w4', 'w5']);
    const victim = waiters[3] as Started;
    await waitFor(() => waitsInLauncher(victim.child.pid as number), 60_000, 'w4 in its launcher');
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    writeFileSync(gate, '');
    const rest = await Promise.all([holder, ...waiters.filter((w) => w !== victim)].map((w) => w.finished));
    expect(rest.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    expect(lines(log)).toEqual(['holder', 'w1', 'w2', 'w3', 'w5']);
    expect(ticketsIn(harness.sandbox.stateDir, key)).toEqual([]);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`${signal} to a waiter in the launcher: exit ${code}, its ticket gone, its command never run`, async () => {
      const { key, env, log, gate } = setup(signal.toLowerCase());
      const holder = run(['--quiet', '--', ...job(log, 'holder', gate)], env);
      await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
      const waiters = await queue(key, env, log, ['w1', 'w2', 'w3', 'w4']);
      const victim = waiters[3] as Started;
      await waitFor(() => waitsInLauncher(victim.child.pid as number), 60_000, 'w4 in its launcher');
      const mine = ticketsIn(harness.sandbox.stateDir, key)[4];
      victim.child.kill(signal);
      expect(await victim.exited).toEqual({ code, signal: null });
      expect(ticketsIn(harness.sandbox.stateDir, key)).not.toContain(mine);
      writeFileSync(gate, '');
      await Promise.all([holder, ...waiters.slice(0, 3)].map((w) => w.finished));
      expect(lines(log)).toEqual(['holder', 'w1', 'w2', 'w3']);
    });
  }

  /**
   * `count` waiting tickets (not holding) whose owners are plain sleeps: nothing but their death changes
   * anything, and no participant is there to remove their tickets.
   */
  function plantWaiters(queueDir: string, key: string, count: number): Started[] {
    const tickets = join(queueDir, 'tickets');
    execFileSync('mkdir', ['-p', '-m', '700', harness.sandbox.stateDir, join(queueDir, 'choosing'), tickets]);
    return Array.from({ length: count }, (_, i) => {
      const n = i + 1;
      const sleeper = harness.sandbox.start(['300'], { file: 'sleep' });
      const pid = sleeper.child.pid as number;
      const token = `${pid}.${startTicks(pid)}.${randomBytes(6).toString('hex')}`;
      const ticket = { v: 1, token, pid, start: startTicks(pid), boot: '', number: n, slots: 1, key };
      writeFileSync(
        join(tickets, `${String(n).padStart(12, '0')}-${token}.json`),
        JSON.stringify({ ...ticket, command: 'planted', cwd: '/', enqueuedAt: Date.now(), startedAt: null }),
      );
      return sleeper;
    });
  }

  it('owners ahead that die without removing their tickets wake the launcher (pidfd)', async () => {
    const { key, env, log } = setup('pidfd');
    // Four tickets ahead: more than `slots` + 2.
    const owners = plantWaiters(join(harness.sandbox.stateDir, keyDirName(key)), key, 4);
    const waiter = run(['--quiet', '--', ...job(log, 'waiter')], env);
    await waitFor(() => waitsInLauncher(waiter.child.pid as number), 60_000, 'the waiter in its launcher');
    for (const owner of owners) owner.child.kill('SIGKILL');
    // No timer runs in the launcher while pidfds watch every owner ahead: only their deaths can wake it.
    expect((await waiter.finished).code).toBe(0);
    expect(lines(log)).toEqual(['waiter']);
    expect(ticketsIn(harness.sandbox.stateDir, key)).toEqual([]);
  });

  // The pace (packages/core/src/lock/pace.ts): a far waiter whose wait the queue's recent hold times say is
  // short stays in Node, since starting Node again before its turn would cost more than it saves.
  for (const [pace, where] of [
    [[100, 120, 90, 110], 'in Node'],
    [[60_000, 50_000, 70_000], 'in the launcher'],
  ] as const) {
    it(`four planted waiters ahead and recent holds of ~${pace[0] / 1000} s: the far waiter waits ${where}`, async () => {
      const { key, env, log } = setup(`pace-${pace[0]}`);
      const queueDir = join(harness.sandbox.stateDir, keyDirName(key));
      const owners = plantWaiters(queueDir, key, 4);
      writeFileSync(join(queueDir, 'pace'), `${JSON.stringify({ v: 1, holdsMs: pace })}\n`, { mode: 0o600 });
      const waiter = run(['--quiet', '--', ...job(log, 'waiter')], env);
      const pid = waiter.child.pid as number;
      // Decided either way: Node handed over (the launcher alone), or Node queued and parked its helper.
      await waitFor(() => waitsInLauncher(pid) || nodeParked(pid), 60_000, 'the waiter to settle');
      expect(waitsInLauncher(pid)).toBe(where === 'in the launcher');
      for (const owner of owners) owner.child.kill('SIGKILL');
      expect((await waiter.finished).code).toBe(0);
      expect(lines(log)).toEqual(['waiter']);
      expect(ticketsIn(harness.sandbox.stateDir, key)).toEqual([]);
    });
  }

  it('the holder SIGKILLed while waiters sleep in their launchers: the queue goes on', async () => {
    const { key, env, log, gate } = setup('holder-killed');
    const holder = run(['--quiet', '--', 'sh', '-c', `echo holder >> ${log}; sleep 300`], env);
    await waitFor(() => lines(log).length === 1, 60_000, 'the holder to run');
    const waiters = await queue(key, env, log, ['w1', 'w2', 'w3', 'w4', 'w5']);
    await waitFor(() => waitsInLauncher(waiters[4]?.child.pid as number), 60_000, 'w5 in its launcher');
    holder.child.kill('SIGKILL');
    writeFileSync(gate, '');
    const results = await Promise.all(waiters.map((w) => w.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    expect(lines(log)).toEqual(['holder', 'w1', 'w2', 'w3', 'w4', 'w5']);
    // The killed holder's tree went with it (its launcher took Node along, Node's helper the command).
    await waitFor(() => harness.sandbox.ours().length === 0, 60_000, 'the holder tree to end');
  });

  it.skipIf(NO_PYTHON)('a Python participant ahead and behind', async () => {
    const { key, env, log, gate } = setup('python');
    const py = (name: string, hold?: string) =>
      harness.sandbox.start([CONTENDER, ...(hold ? ['--hold-until', hold] : []), '--quiet', '--', ...job(log, name)], {
        file: PYTHON,
        env,
      });
    const first = py('py-holder', gate);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the Python holder');
    const waiters = await queue(key, env, log, ['w1', 'w2', 'w3', 'w4']);
    const last = py('py-last');
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 6, 60_000, 'the Python waiter');
    await waitFor(() => waitsInLauncher(waiters[3]?.child.pid as number), 60_000, 'w4 in its launcher');
    writeFileSync(gate, '');
    const results = await Promise.all([first, ...waiters, last].map((w) => w.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(lines(log)).toEqual(['py-holder', 'w1', 'w2', 'w3', 'w4', 'py-last']);
  });

  it("the command's exit code and signal reach the shell through the launcher, waited or not", async () => {
    const { key, env, gate } = setup('codes');
    expect((await run(['--', 'sh', '-c', 'exit 7'], env).finished).code).toBe(7);
    expect((await run(['--', 'sh', '-c', 'kill -TERM $$'], env).finished).code).toBe(143);
    const holder = run(['--quiet', '--', 'sh', '-c', `while [ ! -e ${gate} ]; do sleep 0.02; done`], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const waiters = await queue(key, env, join(harness.sandbox.dir, 'log'), ['w1', 'w2', 'w3']);
    const far = run(['--quiet', '--', 'sh', '-c', 'exit 3'], env);
    await waitFor(() => waitsInLauncher(far.child.pid as number), 60_000, 'the last waiter in its launcher');
    writeFileSync(gate, '');
    expect((await far.finished).code).toBe(3);
    await Promise.all([holder, ...waiters].map((w) => w.finished));
  });

  // Node runs in its own process group below the launcher, so that a group-wide signal reaches it once (the
  // launcher forwards it). Delivered twice, the second would end the tree at once; but the kernel often merges
  // the two (a pending signal is not queued again), so this checks the path, not the single delivery.
  it("a Ctrl-C to the launcher's process group interrupts the run as it would Node: once, then exit 130", async () => {
    const { env, log } = setup('group');
    // Its own process group, as a shell gives a foreground job: the signal goes to the whole group.
    const launcher = spawn(
      BIN,
      [
        'run',
        '--quiet',
        '--grace',
        '60',
        '--',
        'sh',
        '-c',
        `trap 'echo int >> ${log}' INT; echo up >> ${log}; while :; do sleep 0.05; done`,
      ],
      { env: harness.sandbox.env(env), detached: true, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    await waitFor(() => lines(log).includes('up'), 60_000, 'the command to run');
    process.kill(-(launcher.pid as number), 'SIGINT');
    await waitFor(() => lines(log).includes('int'), 60_000, 'the command to get SIGINT');
    // One interrupt: Node is in the 60 s grace, the command still runs (a second one would end it at once).
    await new Promise((r) => setTimeout(r, 1500));
    expect(launcher.exitCode).toBeNull();
    launcher.kill('SIGINT'); // the second interrupt: SIGKILL to what is left, exit 130
    expect(await exited).toBe(130);
    expect(lines(log).filter((line) => line === 'int')).toHaveLength(1);
  });

  it('status shows a run waiting in its launcher under the pid the shell knows', async () => {
    const { key, env, gate } = setup('status');
    const holder = run(['--quiet', '--', 'sh', '-c', `while [ ! -e ${gate} ]; do sleep 0.02; done`], env);
    await waitFor(() => ticketsIn(harness.sandbox.stateDir, key).length === 1, 60_000, 'the holder');
    const waiters = [
      ...(await queue(key, env, join(harness.sandbox.dir, 'log'), ['w1', 'w2', 'w3'])),
      run(['--quiet', '--', 'sh', '-c', 'exit 0'], env),
    ];
    const far = waiters[3] as Started;
    await waitFor(() => waitsInLauncher(far.child.pid as number), 60_000, 'w4 in its launcher');
    const status = await harness.sandbox.run(['status', '--json'], { env });
    const report = JSON.parse(status.stdout) as {
      queues: { tickets: { pid: number; state: string; position: number; command: string }[] }[];
    };
    const tickets = report.queues[0]?.tickets ?? [];
    expect(tickets.map((t) => t.pid)).toEqual([holder, ...waiters].map((w) => w.child.pid));
    expect(tickets[4]).toMatchObject({ state: 'waiting', position: 5, command: 'sh -c exit 0' });
    expect(isAlive(far.child.pid as number)).toBe(true);
    writeFileSync(gate, '');
    await Promise.all([holder, ...waiters].map((w) => w.finished));
  });
});
