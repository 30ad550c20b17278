import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, isAlive, TestSandbox, waitFor } from '../support/processes.js';

const keyDir = (stateDir: string, key: string) =>
  join(stateDir, `q-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`);

function tickets(dir: string): string[] {
  const t = join(dir, 'tickets');
  return existsSync(t) ? readdirSync(t).filter((n) => !n.startsWith('.')) : [];
}

function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A run that holds the lock until the `release` file appears, then logs "holder"; resolves once it holds. */
async function startGatedHolder(sandbox: TestSandbox, prefix: string) {
  const key = `${prefix}-${sandbox.marker}`;
  const release = join(sandbox.dir, 'release');
  const log = join(sandbox.dir, 'log');
  const env = { SEQ_TEST_KEY: key };
  const holder = sandbox.start(
    ['run', '--', 'bash', '-c', `while [ ! -e ${release} ]; do sleep 0.05; done; echo holder >> ${log}`],
    { env },
  );
  await waitFor(() => tickets(keyDir(sandbox.stateDir, key)).length === 1, 20_000, 'holder');
  return { key, release, log, env, holder };
}

describe('faults', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  // Without the subreaper helper the dead run's tree outlives it and the next waiter reaps it by token;
  // with the helper, the helper itself ends the tree when seq-test dies. Both must leave nothing behind.
  it.each([
    ['by the next waiter (token sweep, no helper)', '1'],
    ['by the subreaper helper', '0'],
  ])('a SIGKILLed holder is detected, its leftovers reaped %s, the next run starts', async (_how, noHelper) => {
    sandbox = new TestSandbox();
    const key = `kill-${sandbox.marker}`;
    const pidFile = join(sandbox.dir, 'leftover.pid');
    const started = join(sandbox.dir, 'next-started');
    const holder = sandbox.start(['run', '--', 'bash', '-c', `sleep 300 & echo $! > ${pidFile}; wait`], {
      env: { SEQ_TEST_KEY: key, SEQ_TEST_NO_SUBREAPER: noHelper },
    });
    const leftover = Number(
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 20_000, 'holder'),
    );
    const next = sandbox.start(['run', '--', 'touch', started], { env: { SEQ_TEST_KEY: key } });
    await waitFor(() => next.output.stderr.includes('waiting'), 20_000, 'waiter to queue');
    const killedAt = Date.now();
    holder.child.kill('SIGKILL');
    const result = await next.finished;
    // The figure (< 500 ms) is measured in bench/; here only that it happens, and promptly.
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(result.code).toBe(0);
    expect(existsSync(started)).toBe(true);
    if (noHelper === '1') expect(result.stderr).toMatch(/a run that died left \d+ process\(es\) behind/);
    await waitFor(() => !isAlive(leftover), 5000, 'the leftover to end');
    expect(tickets(keyDir(sandbox.stateDir, key))).toEqual([]);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s to a waiting run: it leaves the queue, the others go on', async (signal, code) => {
    sandbox = new TestSandbox();
    const { key, release, log, env, holder } = await startGatedHolder(sandbox, `sig-${signal}`);
    const victim = sandbox.start(['run', '--', 'bash', '-c', `echo victim >> ${log}`], { env });
    await waitFor(() => victim.output.stderr.includes('waiting'), 20_000, 'victim to wait');
    const third = sandbox.start(['run', '--', 'bash', '-c', `echo third >> ${log}`], { env });
    await waitFor(() => third.output.stderr.includes('waiting'), 20_000, 'third to wait');
    victim.child.kill(signal);
    const victimResult = await victim.finished;
    expect(victimResult.code).toBe(code);
    expect(tickets(keyDir(sandbox.stateDir, key))).toHaveLength(2);
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    expect((await third.finished).code).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['holder', 'third']);
    expect(tickets(keyDir(sandbox.stateDir, key))).toEqual([]);
  });

  // The killed waiter's ticket is ahead of the survivor's (found dead by its check) or behind it (the
  // survivor holds after a look ahead only, and tidies the queue once its run has started).
  it.each([
    ['ahead of', 0],
    ['behind', 1],
  ] as const)(
    "a queued run's helper waits parked: its command starts only at its turn; SIGKILL a waiter %s the other",
    async (_where, victim) => {
      sandbox = new TestSandbox();
      const { key, release, log, env, holder } = await startGatedHolder(sandbox, 'park');
      const waiters = [];
      for (const i of [0, 1]) {
        const waiter = sandbox.start(['run', '--', 'bash', '-c', `echo waiter${i} >> ${log}`], { env });
        await waitFor(() => waiter.output.stderr.includes('waiting'), 20_000, `waiter ${i} to queue`);
        waiters.push(waiter);
      }
      // Each waiter has exactly one parked helper, with no child of its own (its other child, once it
      // waits, is the helper's --watch-owners, which starts nothing).
      const helpers = waiters.map((w) => {
        const children = readFileSync(`/proc/${w.child.pid}/task/${w.child.pid}/children`, 'utf8')
          .trim()
          .split(' ')
          .filter(
            (child) =>
              existsSync(`/proc/${child}`) && readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('--park'),
          );
        expect(children).toHaveLength(1);
        const helper = Number(children[0]);
        expect(readFileSync(`/proc/${helper}/comm`, 'utf8').trim()).toBe('seq-test-subrea');
        expect(readFileSync(`/proc/${helper}/task/${helper}/children`, 'utf8').trim()).toBe('');
        return helper;
      });
      expect(existsSync(log)).toBe(false);
      const survivor = 1 - victim;
      waiters[victim]?.child.kill('SIGKILL');
      await waiters[victim]?.exited;
      await waitFor(() => !isAlive(helpers[victim] as number), 5000, 'the killed waiter’s helper to end');
      writeFileSync(release, '');
      expect((await holder.finished).code).toBe(0);
      expect((await waiters[survivor]?.finished)?.code).toBe(0);
      expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['holder', `waiter${survivor}`]);
      expect(isAlive(helpers[survivor] as number)).toBe(false);
      expect(tickets(keyDir(sandbox.stateDir, key))).toEqual([]);
    },
  );

  it('nested calls inside a holder run at once, and parallel nested calls one at a time', async () => {
    sandbox = new TestSandbox();
    const key = `nested-${sandbox.marker}`;
    const log = join(sandbox.dir, 'log');
    const seq = `"${process.execPath}" "${CLI}"`;
    const inner = (n: number) =>
      `${seq} run --quiet -- bash -c 'echo "S ${n} $(date +%s%N)" >> ${log}; sleep 0.2; echo "E ${n} $(date +%s%N)" >> ${log}'`;
    const script = `${inner(0)} && { ${inner(1)} & ${inner(2)} & ${inner(3)} & ${inner(4)} & wait; }`;
    const result = await sandbox.run(['run', '--quiet', '--timeout', '60', '--', 'bash', '-c', script], {
      env: { SEQ_TEST_KEY: key },
    });
    expect(result.code).toBe(0);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(10);
    // One at a time: every start is followed by its own end.
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]?.split(' ')[0]).toBe('S');
      expect(lines[i + 1]?.split(' ').slice(0, 2)).toEqual(['E', lines[i]?.split(' ')[1]]);
    }
    expect(tickets(keyDir(sandbox.stateDir, key))).toEqual([]);
  });

  it('a ticket whose pid is alive with another start time is dead (pid reuse)', async () => {
    sandbox = new TestSandbox();
    const key = `reuse-${sandbox.marker}`;
    const dir = keyDir(sandbox.stateDir, key);
    mkdirSync(join(dir, 'tickets'), { recursive: true, mode: 0o700 });
    // A live process of ours (this test runner) but a start time it never had.
    const token = `${process.pid}.${startTicks(process.pid) + 12345}.${randomBytes(6).toString('hex')}`;
    const name = `000000000001-${token}.json`;
    writeFileSync(
      join(dir, 'tickets', name),
      JSON.stringify({ v: 1, token, pid: process.pid, start: startTicks(process.pid) + 12345, boot: '' }),
    );
    const result = await sandbox.run(['run', '--no-wait', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    expect(result.code).toBe(0);
    expect(tickets(dir)).toEqual([]);
  });

  it('garbage, truncated, foreign and newer-version files: warned about, survived', async () => {
    sandbox = new TestSandbox();
    const key = `garbage-${sandbox.marker}`;
    const dir = keyDir(sandbox.stateDir, key);
    mkdirSync(join(dir, 'tickets'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'choosing'), { recursive: true, mode: 0o700 });
    const deadToken = (n: number) => `999999${n}.1.${randomBytes(6).toString('hex')}`;
    writeFileSync(join(dir, 'tickets', `000000000001-${deadToken(1)}.json`), '\x00\xff garbage');
    writeFileSync(join(dir, 'tickets', `000000000002-${deadToken(2)}.json`), '{"v":1,"tok');
    writeFileSync(
      join(dir, 'tickets', `000000000003-${deadToken(3)}.json`),
      JSON.stringify({ v: 99, token: 'x', pid: 1, start: 1, future: true }),
    );
    writeFileSync(join(dir, 'tickets', 'README.txt'), 'not a ticket');
    writeFileSync(join(dir, 'choosing', `${deadToken(4)}.json`), '');
    mkdirSync(join(dir, 'tickets', `000000000004-${deadToken(5)}.json`));
    const result = await sandbox.run(['run', '--wait-timeout', '20', '--', 'echo', 'ran'], {
      env: { SEQ_TEST_KEY: key },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('ran\n');
    expect(result.stderr).toContain('unreadable content');
    expect(result.stderr).toContain('ignoring foreign file');
    expect(tickets(dir)).toEqual(['README.txt']);
  });

  it('a newer-version ticket of a live owner keeps its place', async () => {
    sandbox = new TestSandbox();
    const key = `newer-${sandbox.marker}`;
    const dir = keyDir(sandbox.stateDir, key);
    mkdirSync(join(dir, 'tickets'), { recursive: true, mode: 0o700 });
    const sleeper = spawn('sleep', ['300'], { env: sandbox.env(), stdio: 'ignore' });
    const pid = sleeper.pid as number;
    await waitFor(() => isAlive(pid), 5000, 'sleeper');
    const token = `${pid}.${startTicks(pid)}.${randomBytes(6).toString('hex')}`;
    writeFileSync(
      join(dir, 'tickets', `000000000001-${token}.json`),
      JSON.stringify({
        v: 3,
        token,
        pid,
        start: startTicks(pid),
        boot: '',
        startedAt: Date.now(),
        command: 'from the future',
      }),
    );
    const busy = await sandbox.run(['run', '--no-wait', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    expect(busy.code).toBe(123);
    expect(busy.stderr).toContain('protocol version 3');
    sleeper.kill('SIGKILL');
    await waitFor(() => !isAlive(pid), 5000, 'sleeper to die');
    const free = await sandbox.run(['run', '--no-wait', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    expect(free.code).toBe(0);
  });

  it('--no-wait exits 123 and --wait-timeout exits 122, leaving no ticket', async () => {
    sandbox = new TestSandbox();
    const key = `busy-${sandbox.marker}`;
    const release = join(sandbox.dir, 'release');
    const env = { SEQ_TEST_KEY: key };
    const holder = sandbox.start(['run', '--', 'bash', '-c', `while [ ! -e ${release} ]; do sleep 0.05; done`], {
      env,
    });
    await waitFor(() => tickets(keyDir(sandbox.stateDir, key)).length === 1, 20_000, 'holder');
    const noWait = await sandbox.run(['run', '--no-wait', '--', 'true'], { env });
    expect(noWait.code).toBe(123);
    expect(noWait.stderr.trim().split('\n')).toHaveLength(1);
    expect(noWait.stderr).toMatch(/^seq-test: error: the lock for .* is busy .*--no-wait/);
    const timedOut = await sandbox.run(['run', '--wait-timeout', '0.5', '--', 'true'], { env });
    expect(timedOut.code).toBe(122);
    expect(timedOut.stderr).toContain('--wait-timeout');
    expect(tickets(keyDir(sandbox.stateDir, key))).toHaveLength(1);
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    expect(tickets(keyDir(sandbox.stateDir, key))).toEqual([]);
  });

  it('status --json shows the holder and the waiter with their fields', async () => {
    sandbox = new TestSandbox();
    const key = `status-${sandbox.marker}`;
    const release = join(sandbox.dir, 'release');
    const env = { SEQ_TEST_KEY: key };
    // Each duration status reports lies between two instants the test observed around the events it
    // measures, whatever the machine's load: [asked - event seen, answered - event started].
    const holderStarted = Date.now();
    const holder = sandbox.start(
      ['run', '--', 'bash', '-c', `sleep 300 & while [ ! -e ${release} ]; do sleep 0.05; done; kill %1`],
      { env },
    );
    await waitFor(() => tickets(keyDir(sandbox.stateDir, key)).length === 1, 20_000, 'holder');
    const holdingSeen = Date.now();
    const waiterStarted = Date.now();
    const waiter = sandbox.start(['run', '--', 'true'], { env });
    await waitFor(() => waiter.output.stderr.includes('waiting'), 20_000, 'waiter');
    const waitingSeen = Date.now();
    const asked = Date.now();
    const status = await sandbox.run(['status', '--json'], { env });
    const answered = Date.now();
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout);
    const [queue] = report.queues;
    expect(queue.key).toBe(key);
    expect(queue.tickets.map((t: { state: string }) => t.state)).toEqual(['holding', 'waiting']);
    const [h, w] = queue.tickets;
    expect(h.pid).toBe(holder.child.pid);
    expect(h.command).toContain('bash -c');
    expect(h.processes).toBeGreaterThanOrEqual(3);
    expect(h.rssBytes).toBeGreaterThan(0);
    expect(h.heldMs).toBeGreaterThanOrEqual(asked - holdingSeen);
    expect(h.heldMs).toBeLessThanOrEqual(answered - holderStarted);
    expect(w.pid).toBe(waiter.child.pid);
    expect(w.position).toBe(2);
    expect(w.waitedMs).toBeGreaterThanOrEqual(asked - waitingSeen);
    expect(w.waitedMs).toBeLessThanOrEqual(answered - waiterStarted);
    expect(w.cwd).toBe(sandbox.dir);
    const text = await sandbox.run(['status'], { env });
    expect(text.stdout).toMatch(/holding {2}pid \d+/);
    expect(text.stdout).toMatch(/#2 waiting {2}pid \d+/);
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    expect((await waiter.finished).code).toBe(0);
  });

  it("reap --dry-run lists a dead run's leftovers without ending them; reap ends them", async () => {
    sandbox = new TestSandbox();
    const pidFile = join(sandbox.dir, 'pid');
    const holder = sandbox.start(
      ['exec', '--', 'bash', '-c', `setsid sleep 300 >/dev/null 2>&1 & echo $! > ${pidFile}; wait`],
      { env: { SEQ_TEST_NO_SUBREAPER: '1' } },
    ); // with the helper, it ends the tree itself when seq-test dies
    const leftover = Number(
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 20_000, 'child'),
    );
    holder.child.kill('SIGKILL');
    await holder.exited;
    const dry = await sandbox.run(['reap', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const listed = JSON.parse(dry.stdout).processes.map((p: { pid: number }) => p.pid);
    expect(listed).toContain(leftover);
    expect(isAlive(leftover)).toBe(true);
    const reap = await sandbox.run(['reap']);
    expect(reap.code).toBe(0);
    expect(reap.stdout).toContain(`pid ${leftover}`);
    await waitFor(() => !isAlive(leftover), 5000, 'leftover to end');
  });
});

describe('hostile state dir', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const refused = async (prepare: (dir: string) => void, message: RegExp) => {
    sandbox = new TestSandbox();
    const dir = join(sandbox.dir, 'hostile');
    prepare(dir);
    const result = await sandbox.run(['run', '--', 'touch', join(sandbox.dir, 'ran')], {
      env: { SEQ_TEST_STATE_DIR: dir },
    });
    expect(result.code).toBe(125);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(existsSync(join(sandbox.dir, 'ran'))).toBe(false);
  };

  it('refuses a symlink', () =>
    refused((dir) => {
      mkdirSync(`${dir}-real`, { mode: 0o700 });
      symlinkSync(`${dir}-real`, dir);
    }, /is a symlink/));

  it('refuses mode 0777', () =>
    refused((dir) => {
      mkdirSync(dir);
      chmodSync(dir, 0o777);
    }, /mode 777 lets others write to it; set SEQ_TEST_STATE_DIR to a private directory/));

  it('refuses a directory owned by another user', () =>
    refused((dir) => {
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, 65534, 65534);
    }, /belongs to (user \S+ \()?uid 65534/));

  it('creates a missing state dir 0700', async () => {
    sandbox = new TestSandbox();
    rmSync(sandbox.stateDir, { recursive: true, force: true });
    const result = await sandbox.run(['run', '--', 'true'], { env: { SEQ_TEST_KEY: `mk-${sandbox.marker}` } });
    expect(result.code).toBe(0);
    const { statSync } = await import('node:fs');
    expect(statSync(sandbox.stateDir).mode & 0o777).toBe(0o700);
  });
});
