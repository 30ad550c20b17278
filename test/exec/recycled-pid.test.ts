import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PYTHON } from '../pytest/helpers.js';
import { isAlive, REPO, TestSandbox, waitFor } from '../support/processes.js';

// Issue 13, item 1: without the subreaper helper (and in Python's seq_subprocess.run) the run's first
// process leads its session. Once that session has emptied, its id can be handed out again: a stranger that
// gets the pid and calls setsid leads a session with the same id, and must not count as part of the run.
// Reusing a pid by forking 30,000 times is slow, so the test steers the kernel's next pid instead
// (/proc/sys/kernel/ns_last_pid, root only). That counter is the whole machine's: set back, it makes the
// kernel hand every recently freed pid out again at once, to whatever forks next anywhere, and any pid some
// other program still holds (a test run beside this one, ending "its" process by pid) then names a stranger.
// So each steering puts the counter back where it was as soon as the stranger has its pid.
// And the file runs in a pid namespace of its own (unshare(1), with its own /proc): there the counter, the
// pids and every process the tests see are the namespace's, so no other test run on the machine (another
// checkout's, a developer's) gets a steered pid, and none of theirs can take the pid a test waits for.
// Steering needs CAP_SYS_ADMIN, and so does a pid namespace: where the one works without the other, the
// file runs in the machine's namespace as before (one file at a time: it is in SERIAL, vitest.config.ts).
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';
const canSteerPids = (() => {
  try {
    accessSync(NS_LAST_PID, constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();
/** Set inside the namespace: the file runs its tests there, and does not start itself again. */
const OWN_PID_NS_ENV = 'SEQ_TEST_OWN_PID_NS';
const inOwnPidNs = process.env[OWN_PID_NS_ENV] === '1';
const UNSHARE = ['--pid', '--fork', '--mount-proc', '--kill-child'];
const canUnshare =
  canSteerPids && !inOwnPidNs && spawnSync('unshare', [...UNSHARE, 'true'], { stdio: 'ignore' }).status === 0;

const lastPid = () => Number(readFileSync(NS_LAST_PID, 'utf8'));

let sb: TestSandbox;
const strangers: ChildProcess[] = [];
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  for (const child of strangers.splice(0)) child.kill('SIGKILL');
  sb.cleanup();
});

/**
 * Starts `sleep 120` in a session of its own (setsid, no run token) under pid `pid`, once that pid is free.
 * Another process of the machine may take the pid first: then it tries again.
 */
async function strangerAt(pid: number): Promise<ChildProcess> {
  await waitFor(() => !existsSync(`/proc/${pid}`), 30_000, `pid ${pid} to be free`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const before = lastPid();
    writeFileSync(NS_LAST_PID, String(pid - 1));
    let child: ChildProcess;
    try {
      child = spawn('sleep', ['120'], { detached: true, stdio: 'ignore', env: sb.env() });
    } finally {
      // Forward again, never back: other processes may have taken pids past `before` meanwhile.
      if (lastPid() < before) writeFileSync(NS_LAST_PID, String(before));
    }
    strangers.push(child);
    if (child.pid === pid) return child;
    child.kill('SIGKILL');
    await waitFor(() => !existsSync(`/proc/${pid}`), 30_000, `pid ${pid} to be free again`);
  }
  throw new Error(`could not start a process under pid ${pid}: other processes kept taking it`);
}

/** Once FIRST_PROCESS has exited: a stranger under its pid, then `go` for the child it left. */
async function strangerAtFirstPid(): Promise<ChildProcess> {
  const file = join(sb.dir, 'rootpid');
  const pid = await waitFor(() => existsSync(file) && Number(readFileSync(file, 'utf8')), 30_000, 'the first process');
  const stranger = await strangerAt(pid);
  writeFileSync(join(sb.dir, 'go'), '');
  return stranger;
}

/** sh -c script: records its pid, leaves a setsid child (with the token) that waits for `go`, and exits. */
const FIRST_PROCESS = `echo $$ > rootpid; setsid sh -c 'while [ ! -e go ]; do sleep 0.02; done' & sleep 0.2`;

describe.runIf(canUnshare)('in a pid namespace of its own', () => {
  it('every test of this file passes there', async () => {
    const report = join(sb.dir, 'report.json');
    const file = relative(REPO, fileURLToPath(import.meta.url));
    const vitest = join(REPO, 'node_modules', 'vitest', 'vitest.mjs');
    const inner = await sb.run(
      [
        ...UNSHARE,
        process.execPath,
        vitest,
        'run',
        '--project',
        'e2e-serial',
        '--reporter=json',
        `--outputFile=${report}`,
        file,
      ],
      { file: 'unshare', cwd: REPO, env: { [OWN_PID_NS_ENV]: '1' } },
    );
    const output = `${inner.stdout}${inner.stderr}`;
    expect(inner.code, output).toBe(0);
    const counts = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number };
    // All of them ran (none skipped: the namespace can steer its pids), Python's only where there is one.
    expect(counts, output).toMatchObject({ numPassedTests: PYTHON ? 3 : 2, numFailedTests: 0 });
  });
});

describe.runIf(canSteerPids && !canUnshare)('a recycled pid of the first process', () => {
  it('steering a stranger onto a freed pid leaves the machine its pid counter: what forks next gets a new pid', async () => {
    // Twenty freed pids below the counter: set back and left there, the counter hands them out next.
    const freed: number[] = [];
    for (let i = 0; i < 20; i++) {
      const child = spawn('true', { stdio: 'ignore' });
      await once(child, 'exit');
      freed.push(child.pid as number);
    }
    const highest = lastPid();
    await strangerAt(Math.min(...freed));
    const next = spawn('true', { stdio: 'ignore' });
    await once(next, 'exit');
    // (a counter that wrapped around past pid_max meanwhile would start low again: not on a 2-core box
    // within this test)
    expect(next.pid as number, `pids freed before the steering: ${freed.join(' ')}`).toBeGreaterThan(highest);
  });

  it('without the helper, a stranger leading the reused session id is neither waited for nor signalled', async () => {
    const run = sb.start(['exec', '--json', '--wait-all', '--timeout', '20', '--', 'sh', '-c', FIRST_PROCESS], {
      env: { SEQ_TEST_NO_SUBREAPER: '1' },
    });
    const stranger = await strangerAtFirstPid();
    const result = await run.finished;
    const report = JSON.parse(result.stdout) as { exitCode: number; attempts: { reaped: { pid: number }[] }[] };
    expect(report.exitCode, result.stderr).toBe(0);
    expect(report.attempts[0]?.reaped).toEqual([]);
    expect(isAlive(stranger.pid as number)).toBe(true);
  });

  it.runIf(PYTHON)('seq_subprocess.run: the stranger is not waited for and not among the leftovers', async () => {
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(REPO, 'integrations', 'pytest', 'templates'))})
import seq_subprocess
try:
    r = seq_subprocess.run(['sh', '-c', ${JSON.stringify(FIRST_PROCESS)}], timeout=20)
    print(json.dumps({'code': r.returncode, 'leftovers': r.leftovers}))
except seq_subprocess.TimeoutExpired:
    print(json.dumps({'code': 'timeout'}))
`;
    const run = sb.start(['-c', script], { file: PYTHON?.path });
    const stranger = await strangerAtFirstPid();
    const result = await run.finished;
    expect(JSON.parse(result.stdout), result.stderr).toEqual({ code: 0, leftovers: [] });
    expect(isAlive(stranger.pid as number)).toBe(true);
  });
});
