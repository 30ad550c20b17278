import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, killPid, TestSandbox } from '../support/processes.js';
import { type Escapee, environOf, escapeFragment, helperBuilt, pidFile, seen, statOf } from './helpers.js';

// What the command leaves behind: background children waited for (--wait-all) or ended after --linger and
// reported; escapees (setsid, double fork, env -i + setsid + double fork) reaped at the end and on timeout;
// a look-alike decoy that seq-test did not start is never touched.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

const go = () => writeFileSync(join(sb.dir, 'go'), '');
const WAIT_FOR_GO = 'while [ ! -e go ]; do sleep 0.02; done';

interface JsonReport {
  exitCode: number;
  reaped: { pid: number; command: string; signal: string; reason: string }[];
}

describe('background children', () => {
  it('--wait-all waits for a background grandchild however long it takes', async () => {
    const result = await sb.run([
      'exec',
      '--wait-all',
      '--linger',
      '0',
      '--',
      'sh',
      '-c',
      '(sleep 1; echo late > done.txt) & echo started',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('started\n');
    expect(readFileSync(join(sb.dir, 'done.txt'), 'utf8')).toBe('late\n');
    expect(result.stderr).toBe('');
    expect(sb.ours()).toEqual([]);
  });

  it('--wait-all is still bounded by --timeout (exit 124)', async () => {
    const result = await sb.run(['exec', '--wait-all', '--timeout', '1', '--', 'sh', '-c', 'sleep 300 & exit 0']);
    expect(result.code).toBe(124);
    expect(sb.ours()).toEqual([]);
  });

  it('ends a leftover after --linger and reports its pid and command on stderr', async () => {
    const result = await sb.run(['exec', '--linger', '0.3', '--', 'sh', '-c', 'sleep 300 & echo $! > bg.pid; exit 3']);
    expect(result.code, result.stderr).toBe(3);
    const bg = await pidFile(sb, 'bg.pid', 0);
    expect(result.stderr).toBe(`seq-test: ended leftover process ${bg} (sleep 300) with SIGTERM\n`);
    expect(isAlive(bg)).toBe(false);
    expect(sb.ours()).toEqual([]);
  });

  it('ends a leftover idle for the whole --linger after a short settle; --linger-idle gives it the full --linger', async () => {
    // The leftover sleeps ~3 s before the command ends, three times the linger.
    const command = ['sh', '-c', 'sleep 300 & echo $! > bg.pid; sleep 3; exit 4'];
    const idle = await sb.run(['exec', '--verbose', '--linger', '1', '--', ...command]);
    expect(idle.code, idle.stderr).toBe(4);
    const bg = await pidFile(sb, 'bg.pid', 0);
    expect(idle.stderr).toMatch(/1 process still running after the main one, idle for \d+\.\d s: ending it/);
    expect(idle.stderr).toContain(`seq-test: ended leftover process ${bg} (sleep 300) with SIGTERM`);
    expect(isAlive(bg)).toBe(false);
    const full = await sb.run(['exec', '--verbose', '--linger', '1', '--linger-idle', '--', ...command]);
    expect(full.code, full.stderr).toBe(4);
    expect(full.stderr).toContain('1 process still running after the main one: giving them 1.0 s');
    expect(full.stderr).not.toContain('idle for');
    expect(sb.ours()).toEqual([]);
  });

  it('does not wait for the linger period when nothing is left', async () => {
    // Not a timing assertion: with a 300 s linger, only an early exit lets this test finish at all.
    const result = await sb.run(['exec', '--linger', '300', '--', 'sh', '-c', '(sleep 0.3) & exit 0']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('a --timeout that expires while only leftovers run ends them without turning the run into a timeout', async () => {
    const result = await sb.run([
      'exec',
      '--timeout',
      '1',
      '--linger',
      '300',
      '--',
      'sh',
      '-c',
      'sleep 300 & echo $! > bg.pid; exit 3',
    ]);
    expect(result.code, result.stderr).toBe(3);
    const bg = await pidFile(sb, 'bg.pid', 0);
    expect(result.stderr).toContain(`seq-test: ended leftover process ${bg} (sleep 300)`);
    expect(sb.ours()).toEqual([]);
  });
});

/** Runs seq-test over a command that starts the escapees, checks they really escaped, then lets it go on. */
async function runEscapees(kinds: Escapee[], args: string[], env: NodeJS.ProcessEnv = {}) {
  // "escaped" goes to stderr: under --json stdout is captured for the document.
  const command = `echo $$ > main.pid\n${escapeFragment(kinds)}\necho escaped >&2\n${WAIT_FOR_GO}`;
  const started = sb.start([...args, '--', 'sh', '-c', command], { env });
  await seen(started, 'escaped', 'stderr');
  // Runs must use the helper unless told not to (it goes missing while packages/core is being rebuilt).
  const mode = env.SEQ_TEST_NO_SUBREAPER === '1' ? ', no subreaper helper)' : ', subreaper helper)';
  expect(started.output.stderr, 'helper mode').toContain(mode);
  const pids = new Map<Escapee, number>();
  for (const kind of kinds) pids.set(kind, await pidFile(sb, `${kind}.pid`));
  const mainPid = await pidFile(sb, 'main.pid');
  const session = statOf(mainPid).sid;
  for (const [kind, pid] of pids) {
    const stat = statOf(pid);
    // Each really left: orphaned (double fork), and out of the command's session (setsid ones).
    if (kind !== 'setsid') expect(stat.ppid, `${kind} orphaned`).not.toBe(mainPid);
    if (kind !== 'double') expect(stat.sid, `${kind} left the session`).not.toBe(session);
    const hasToken = environOf(pid).some((v) => v.startsWith('SEQ_TEST_TOKEN='));
    expect(hasToken, `${kind} carries the token`).toBe(kind !== 'envi');
  }
  return { started, pids };
}

const ALL: Escapee[] = ['setsid', 'double', 'envi'];

describe('escapees with the subreaper helper', () => {
  it('the helper is built (the suite relies on it)', () => {
    expect(helperBuilt()).toBe(true);
  });

  it('setsid, double fork and env -i + setsid + double fork are all reaped when the command ends', async () => {
    const { started, pids } = await runEscapees(ALL, [
      'exec',
      '--verbose',
      '--json',
      '--linger',
      '0.2',
      '--grace',
      '2',
    ]);
    go();
    const result = await started.finished;
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as JsonReport;
    for (const [kind, pid] of pids) {
      expect(isAlive(pid), `${kind} escapee ${pid} still alive`).toBe(false);
      expect(result.stderr).toContain(`seq-test: ended leftover process ${pid} (sleep 300) with SIGTERM`);
      expect(json.reaped).toContainEqual(
        expect.objectContaining({ pid, command: 'sleep 300', signal: 'SIGTERM', reason: 'linger' }),
      );
    }
    expect(sb.ours()).toEqual([]);
  });

  it('all three are reaped on --timeout too (exit 124)', async () => {
    const { started, pids } = await runEscapees(ALL, ['exec', '--verbose', '--json', '--timeout', '2', '--grace', '2']);
    const result = await started.finished; // never told to go: the timeout ends it
    expect(result.code).toBe(124);
    const json = JSON.parse(result.stdout) as JsonReport & { timedOut: boolean };
    expect(json.timedOut).toBe(true);
    for (const [kind, pid] of pids) {
      expect(isAlive(pid), `${kind} escapee ${pid} still alive`).toBe(false);
      expect(json.reaped).toContainEqual(expect.objectContaining({ pid, reason: 'timeout' }));
    }
    expect(sb.ours()).toEqual([]);
  });
});

describe('escapees without the helper (SEQ_TEST_NO_SUBREAPER=1)', () => {
  const env = { SEQ_TEST_NO_SUBREAPER: '1' };
  // The env -i one is the documented limit without the helper: no token, no session, no parent link.

  it('setsid and double fork keep the token and are reaped when the command ends', async () => {
    const { started, pids } = await runEscapees(
      ['setsid', 'double'],
      ['exec', '--verbose', '--linger', '0.2', '--grace', '2'],
      env,
    );
    go();
    const result = await started.finished;
    expect(result.code).toBe(0);
    for (const [kind, pid] of pids) {
      expect(isAlive(pid), `${kind} escapee ${pid} still alive`).toBe(false);
      expect(result.stderr).toContain(`seq-test: ended leftover process ${pid} (sleep 300)`);
    }
    expect(sb.ours()).toEqual([]);
  });

  it('and on --timeout', async () => {
    const { started, pids } = await runEscapees(
      ['setsid', 'double'],
      ['exec', '--verbose', '--timeout', '2', '--grace', '2'],
      env,
    );
    const result = await started.finished;
    expect(result.code).toBe(124);
    for (const [kind, pid] of pids) expect(isAlive(pid), `${kind} escapee ${pid} still alive`).toBe(false);
    expect(sb.ours()).toEqual([]);
  });
});

describe('a look-alike decoy seq-test did not start', () => {
  /** Started by the test itself: same command, same directory, re-parented away, no token. */
  async function startDecoy(name: string): Promise<number> {
    // setsid(1) runs `sh -c` in a new session; sh exits and its `sleep 300` is re-parented.
    const decoy = spawn('setsid', ['sh', '-c', `sleep 300 & echo $! > ${name}`], {
      cwd: sb.dir,
      env: sb.env(),
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => decoy.once('exit', resolve));
    const pid = await pidFile(sb, name);
    await exited;
    return pid;
  }

  for (const helper of [true, false]) {
    it(`is never signalled, whether it predates the run or starts during it (${helper ? 'helper' : 'no helper'})`, async () => {
      const before = await startDecoy('decoy-before.pid');
      const started = sb.start(
        ['exec', '--json', '--linger', '0.2', '--', 'sh', '-c', `sleep 300 & echo $! > mine.pid; ${WAIT_FOR_GO}`],
        { env: helper ? {} : { SEQ_TEST_NO_SUBREAPER: '1' } },
      );
      const mine = await pidFile(sb, 'mine.pid');
      const during = await startDecoy('decoy-during.pid');
      go();
      const result = await started.finished;
      expect(result.code).toBe(0);
      expect(isAlive(mine)).toBe(false);
      expect(isAlive(before), 'decoy started before the run').toBe(true);
      expect(isAlive(during), 'decoy started during the run').toBe(true);
      const reaped = (JSON.parse(result.stdout) as JsonReport).reaped.map((p) => p.pid);
      expect(reaped).toEqual([mine]);
      expect(result.stderr).not.toContain(`process ${before} `);
      expect(result.stderr).not.toContain(`process ${during} `);
      // The decoys are ours to end, by pid.
      expect(sb.ours().sort()).toEqual([before, during].sort());
      killPid(before);
      killPid(during);
    });
  }

  it('not even by a timeout', async () => {
    const before = await startDecoy('decoy-before.pid');
    const result = await sb.run(['exec', '--timeout', '0.5', '--', 'sh', '-c', 'sleep 300 & sleep 300']);
    expect(result.code).toBe(124);
    expect(isAlive(before)).toBe(true);
    expect(sb.ours()).toEqual([before]);
    killPid(before);
  });
});
