import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, killPid, TestSandbox, waitFor } from '../support/processes.js';

// Issue 12: `seq-test reap` and `status` looked at every dead run of this user, machine-wide. A test's
// `reap` in its own sandbox then ended another checkout's test leftovers (a waiter that was about to sweep
// them found nothing: seen when three clones ran .ci/run at once), or a developer's real ones. A sweep that
// names no run answers for the runs of its own state dir only (docs/PROTOCOL.md, "Leftovers and state dirs").
// Every check from another state dir is read-only (status, a dry run) before a real reap there: on a version
// without the scope the test fails before its `reap` could reach anyone else's processes.

const sandboxes: TestSandbox[] = [];
const sandbox = () => {
  const sb = new TestSandbox();
  sandboxes.push(sb);
  return sb;
};
afterEach(() => {
  for (const sb of sandboxes.splice(0)) sb.cleanup();
});

/**
 * A dead run's leftover: `seq-test exec` (without the subreaper helper, which would end the tree itself)
 * leaves a setsid `sleep` carrying its token, and is SIGKILLed. `env` is the run's environment.
 */
async function leaveLeftover(sb: TestSandbox, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const pidFile = join(sb.dir, 'leftover.pid');
  const run = sb.start(['exec', '--', 'bash', '-c', `setsid sleep 300 >/dev/null 2>&1 & echo $! > ${pidFile}; wait`], {
    env: { SEQ_TEST_NO_SUBREAPER: '1', ...env },
  });
  const pid = Number(
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 30_000, 'the leftover'),
  );
  run.child.kill('SIGKILL');
  await run.exited;
  return pid;
}

/** Pids `reap --json` (dry run or not) reports, and `status --json` lists, with `env`. */
async function reaped(sb: TestSandbox, args: string[], env: NodeJS.ProcessEnv = {}): Promise<number[]> {
  const result = await sb.run(['reap', '--json', ...args], { env });
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { processes: { pid: number }[] }).processes.map((p) => p.pid);
}
async function listed(sb: TestSandbox, env: NodeJS.ProcessEnv = {}): Promise<number[]> {
  const result = await sb.run(['status', '--json'], { env });
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { leftovers: { pid: number }[] }).leftovers.map((p) => p.pid);
}

describe('reap and status answer for the runs of their own state dir', () => {
  it("a dead run's leftover in one state dir is neither listed nor ended from another; reap in its own ends it", async () => {
    const a = sandbox();
    const b = sandbox();
    const leftover = await leaveLeftover(a);
    expect(await listed(b)).not.toContain(leftover);
    expect(await reaped(b, ['--dry-run'])).not.toContain(leftover);
    expect(await reaped(b, [])).not.toContain(leftover);
    expect(isAlive(leftover), "another state dir's reap ended the leftover").toBe(true);
    expect(await listed(a)).toContain(leftover);
    expect(await reaped(a, [])).toContain(leftover);
    await waitFor(() => !isAlive(leftover), 10_000, 'the leftover to end');
  });

  it('a process whose environment names no state dir belongs to the default one only', async () => {
    const a = sandbox();
    const b = sandbox();
    // A run in the default state dir (SEQ_TEST_STATE_DIR empty counts as unset), as a developer's are.
    const leftover = await leaveLeftover(a, { SEQ_TEST_STATE_DIR: '' });
    try {
      expect(await listed(b)).not.toContain(leftover);
      expect(await reaped(b, ['--dry-run'])).not.toContain(leftover);
      expect(await reaped(b, [])).not.toContain(leftover);
      expect(isAlive(leftover), "a named state dir's reap ended a default run's leftover").toBe(true);
      // The default state dir, moved into the sandbox (TMPDIR): dry runs only, which end nothing, because this
      // scope holds the developer's own runs too.
      const byDefault = { SEQ_TEST_STATE_DIR: '', XDG_RUNTIME_DIR: '', TMPDIR: b.dir };
      expect(await reaped(b, ['--dry-run'], byDefault)).toContain(leftover);
      expect(await listed(b, byDefault)).toContain(leftover);
      // Named explicitly, the default state dir is still the default one.
      const named = { ...byDefault, SEQ_TEST_STATE_DIR: join(b.dir, `seq-test-${process.getuid?.()}`) };
      expect(await reaped(b, ['--dry-run'], named)).toContain(leftover);
    } finally {
      killPid(leftover);
    }
  });

  it("a relative SEQ_TEST_STATE_DIR is the process's own working directory's", async () => {
    const a = sandbox();
    const leftover = await leaveLeftover(a, { SEQ_TEST_STATE_DIR: 'state' }); // started in a.dir
    expect(await reaped(a, ['--dry-run'], { SEQ_TEST_STATE_DIR: join(a.dir, 'elsewhere') })).not.toContain(leftover);
    expect(await reaped(a, [], { SEQ_TEST_STATE_DIR: a.stateDir })).toContain(leftover);
    await waitFor(() => !isAlive(leftover), 10_000, 'the leftover to end');
  });
});
