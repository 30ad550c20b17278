import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, isAlive, REPO, TestSandbox, waitFor } from '../support/processes.js';
import { WAITING_PARENT } from '../support/waiting-parent.js';

/**
 * `seq-test cancel` and the re-parented mark of `seq-test status` (issue 15 item 6) with real processes:
 * a `seq-test run` holder whose parent is SIGKILLed, an owner that ignores SIGTERM, planted tickets naming
 * a bystander. Each test has its own state dir and key. The real runners (Vitest, Jest) are in
 * test/vitest/reparented.test.ts, test/jest/reparented.test.ts and test/monitor.
 */

let sandbox: TestSandbox | undefined;
afterEach(() => {
  sandbox?.cleanup();
  sandbox = undefined;
});

function setup() {
  const box = new TestSandbox();
  sandbox = box;
  const key = `cancel-${box.marker}`;
  const env = box.env({ SEQ_TEST_KEY: key });
  const tickets = (): TicketStatus[] => readStatus({ key, env, withLeftovers: false }).queues[0]?.tickets ?? [];
  const cli = (args: string[]) => box.run(args, { env: { SEQ_TEST_KEY: key } });
  return { box, key, env, tickets, cli };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return '';
  }
}

function startTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** One line on stderr, nothing on stdout, exit 125: the CLI's contract for bad input. */
function expectOneLineError(result: { code: number | null; stdout: string; stderr: string }, text: RegExp): void {
  expect(result.code, result.stderr).toBe(125);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
  expect(result.stderr).toMatch(text);
}

describe('seq-test status: re-parented runs', () => {
  it('a holder whose parent was SIGKILLed is shown re-parented (text and --json); cancel ends it, its command too, and the next run starts', async () => {
    const s = setup();
    const marker = join(s.box.dir, 'holder-started');
    const parent = s.box.start(
      ['-e', WAITING_PARENT, CLI, 'run', '--', 'sh', '-c', `touch ${marker}; sleep 300 & sleep 300`],
      { file: process.execPath, env: { SEQ_TEST_KEY: s.key } },
    );
    const held = await waitFor(() => s.tickets().find((t) => t.state === 'holding'), 60_000, 'the holder');
    await waitFor(() => {
      try {
        return readFileSync(marker) !== undefined;
      } catch {
        return false;
      }
    });
    // Its parent is recorded, alive: not re-parented.
    expect(held.parent).toMatchObject({ pid: parent.child.pid, start: startTime(parent.child.pid as number) });
    expect(held.reparented).toBe(false);
    const before = await s.cli(['status']);
    expect(before.stdout).not.toContain('re-parented');

    parent.child.kill('SIGKILL'); // the parent only: `seq-test run` goes on, re-parented
    await parent.exited;
    const orphan = await waitFor(() => s.tickets().find((t) => t.reparented), 60_000, 'the holder re-parented');
    expect(orphan.pid).toBe(held.pid);
    expect(isAlive(held.pid)).toBe(true);
    const text = await s.cli(['status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `re-parented: its parent ${parent.child.pid} (node) is gone; end it with: seq-test cancel ${held.pid}`,
    );
    const json = await s.cli(['status', '--json']);
    const ticket = JSON.parse(json.stdout).queues[0].tickets[0];
    expect(ticket).toMatchObject({ pid: held.pid, reparented: true, parent: { pid: parent.child.pid, name: 'node' } });

    const waiter = s.box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: s.key } });
    await waitFor(() => s.tickets().some((t) => t.state === 'waiting'), 60_000, 'the next run to queue');
    // The marker is touched before the two sleeps start: wait for both (under load a fork can take a while).
    const sleeps = await waitFor(
      () => {
        const found = s.box.ours().filter((pid) => cmdline(pid) === 'sleep\x00300\x00');
        return found.length === 2 && found;
      },
      60_000,
      "the holder's two sleeps",
    );

    const cancelled = await s.cli(['cancel', String(held.pid)]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(
      new RegExp(
        `^cancelled pid ${held.pid} \\(holding: sh -c .*\\): ended by SIG(TERM|KILL)(; .*)?; its ticket is gone$`,
        'm',
      ),
    );
    expect(isAlive(held.pid)).toBe(false);
    for (const pid of sleeps) expect(isAlive(pid)).toBe(false);
    const next = await waiter.finished;
    expect(next.code, next.stderr).toBe(0);
    expect(s.tickets()).toEqual([]);
    await waitFor(() => s.box.ours().length === 0, 60_000, 'nothing left running');
  });
});

describe('seq-test cancel', () => {
  it('ends an owner that ignores SIGTERM with SIGKILL after the grace, reaps what carries its token, removes its ticket', async () => {
    const s = setup();
    const ready = join(s.box.dir, 'ready');
    // An owner that holds the lock and ignores SIGTERM (hung, as far as signals go), with an escapee of its
    // run: a setsid sleep carrying the run's token.
    const owner = `
      const { acquireLock } = await import(${JSON.stringify(join(REPO, 'packages/core/dist/index.js'))});
      const { spawn } = await import('node:child_process');
      const { writeFileSync } = await import('node:fs');
      process.on('SIGTERM', () => {});
      const lock = await acquireLock({ command: 'stubborn owner' });
      const child = spawn('setsid', ['sleep', '300'], { env: { ...process.env, SEQ_TEST_TOKEN: lock.token.value }, stdio: 'ignore' });
      writeFileSync(${JSON.stringify(ready)}, String(child.pid));
      setInterval(() => {}, 1e9);
    `;
    const stubborn = s.box.start(['--input-type=module', '-e', owner], {
      file: process.execPath,
      env: { SEQ_TEST_KEY: s.key },
    });
    const escapee = await waitFor(() => {
      try {
        return Number(readFileSync(ready, 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    });
    const held = await waitFor(() => s.tickets().find((t) => t.state === 'holding'), 60_000, 'the owner to hold');
    // No waiter here: a waiter would find the killed owner's ticket dead and might reap the escapee first.
    const result = await s.cli(['cancel', '--json', '--grace', '0.5', held.token]);
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout);
    expect(outcome).toMatchObject({
      cancelled: true,
      pid: stubborn.child.pid,
      was: 'holding',
      command: 'stubborn owner',
      signal: 'SIGKILL',
      ticketRemoved: true,
    });
    expect(outcome.leftovers.map((p: { pid: number }) => p.pid)).toContain(escapee);
    expect((await stubborn.exited).signal).toBe('SIGKILL');
    await waitFor(() => !isAlive(escapee), 10_000, 'the escapee to be gone');
    expect(s.tickets()).toEqual([]);
  });

  it('a waiting run: cancelled by its ticket name ($SEQ_TEST_TICKET form) or file, it leaves and exits 143; the holder is untouched', async () => {
    const s = setup();
    const holder = s.box.start(['run', '--', 'sleep', '300'], { env: { SEQ_TEST_KEY: s.key } });
    await waitFor(() => s.tickets().some((t) => t.state === 'holding'), 60_000, 'the holder');
    const first = s.box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: s.key } });
    const second = s.box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: s.key } });
    const [a, b] = await waitFor(
      () => {
        const waiting = s.tickets().filter((t) => t.state === 'waiting');
        return waiting.length === 2 && waiting;
      },
      60_000,
      'two waiters',
    );
    const byName = await s.cli([
      'cancel',
      (a as TicketStatus).file
        .split('/')
        .pop()
        ?.replace(/\.json$/, '') ?? '',
    ]);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toMatch(/^cancelled pid \d+ \(waiting: true\): ended by SIGTERM; its ticket is gone$/m);
    const byFile = await s.cli(['cancel', (b as TicketStatus).file]);
    expect(byFile.code, byFile.stderr).toBe(0);
    const ended = await Promise.all([first.finished, second.finished]);
    expect(ended.map((r) => r.code)).toEqual([143, 143]);
    expect(s.tickets().map((t) => [t.pid, t.state])).toEqual([[holder.child.pid, 'holding']]);
    expect(isAlive(holder.child.pid as number)).toBe(true);
  });

  it('bad arguments: one line naming the fix, exit 125, nothing signalled or removed', async () => {
    const s = setup();
    const bystander = s.box.start(['300'], { file: '/bin/sleep' });
    const pid = bystander.child.pid as number;
    await waitFor(() => isAlive(pid), 10_000, 'the bystander');
    expectOneLineError(await s.cli(['cancel']), /cancel needs the run to end: .*\(e\.g\. seq-test cancel 4242\)/);
    expectOneLineError(
      await s.cli(['cancel', 'soon']),
      /"soon" is not a pid, a run token or a ticket: .*seq-test cancel 4242/,
    );
    expectOneLineError(await s.cli(['cancel', '0']), /"0" is not a pid/);
    expectOneLineError(await s.cli(['cancel', '--grace', 'x', '1']), /--grace/);
    // A pid no process has (pid_max is at most 2^22).
    expectOneLineError(
      await s.cli(['cancel', '4194305']),
      /no process has pid 4194305, and no ticket names it: .*status --all-keys/,
    );
    expectOneLineError(
      await s.cli(['cancel', String(pid)]),
      new RegExp(`pid ${pid} neither holds nor waits for a lock of yours`),
    );
    expectOneLineError(
      await s.cli(['cancel', `${pid}.1.0123456789ab`]),
      new RegExp(`no ticket with token ${pid}\\.1\\.0123456789ab in .*status --all-keys`),
    );
    expect(isAlive(pid)).toBe(true);
  });

  it("refuses another user's process, by pid and through a ticket naming it, and signals nothing", async () => {
    const s = setup();
    const other = anotherUsersProcess(s.box);
    if (!other) {
      // Neither root (to start one) nor any process of another uid on this machine: nothing to test against.
      console.warn('no process of another user available: skipping the refusal check');
      return;
    }
    const { pid, uid } = await other;
    expectOneLineError(
      await s.cli(['cancel', String(pid)]),
      new RegExp(`pid ${pid} is another user's process \\(uid ${uid}\\): seq-test cancels only your own runs`),
    );
    // A planted ticket naming it exactly (pid and start time) is refused the same way, and stays.
    const file = plantTicket(s.box.stateDir, s.key, pid, startTime(pid), null);
    expectOneLineError(
      await s.cli(['cancel', String(pid)]),
      new RegExp(`pid ${pid} is another user's process \\(uid ${uid}\\): seq-test cancels only your own runs`),
    );
    expect(isAlive(pid)).toBe(true);
    expect(readFileSync(file, 'utf8')).toContain(`"pid":${pid}`);
  });

  it('never signals a reused pid: a ticket whose start time differs is a dead run, tidied, and the bystander lives', async () => {
    const s = setup();
    const bystander = s.box.start(['300'], { file: '/bin/sleep' });
    const pid = bystander.child.pid as number;
    await waitFor(() => isAlive(pid) && startTime(pid) > 0, 10_000, 'the bystander');
    const file = plantTicket(s.box.stateDir, s.key, pid, startTime(pid) - 1, Date.now());
    const token = file
      .split('-')
      .pop()
      ?.replace(/\.json$/, '') as string;
    const result = await s.cli(['cancel', String(pid)]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`pid ${pid} was already gone (planted); its ticket is gone`);
    expect(s.tickets().map((t) => t.token)).not.toContain(token);
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(pid)).toBe(true);
    expect(bystander.child.exitCode).toBeNull();
  });
});

/** Writes a ticket into the key's queue as a (foreign) owner would; returns its file. */
function plantTicket(stateDir: string, key: string, pid: number, start: number, startedAt: number | null): string {
  const status = readStatus({ key, env: { SEQ_TEST_STATE_DIR: stateDir }, withLeftovers: false });
  const dir = join(status.queues[0]?.dir as string, 'tickets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = `${pid}.${start}.0123456789ab`;
  const file = join(dir, `000000000001-${token}.json`);
  const ticket = { v: 1, token, pid, start, boot: '', number: 1, key, command: 'planted', startedAt };
  writeFileSync(file, `${JSON.stringify(ticket)}\n`, { mode: 0o600 });
  return file;
}

/** A live process of another uid: started as nobody when we are root, else any such process found. */
function anotherUsersProcess(box: TestSandbox): Promise<{ pid: number; uid: number }> | undefined {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) {
    // Carries the sandbox marker, so cleanup ends it (root may).
    const child = spawn('/bin/sleep', ['300'], { uid: 65534, gid: 65534, stdio: 'ignore', env: box.env() });
    return waitFor(
      () => child.pid !== undefined && isAlive(child.pid) && { pid: child.pid, uid: 65534 },
      10_000,
      'a process of uid 65534',
    );
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const owner = statSync(`/proc/${name}`).uid;
      if (owner !== uid) return Promise.resolve({ pid: Number(name), uid: owner });
    } catch {}
  }
  return undefined;
}
