import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Finished, TestSandbox, waitFor } from '../support/processes.js';
import { allTickets, copyExample, FIXTURES, PYTHON, PYTHONS, stamps } from './helpers.js';

/** A Python on PATH with pytest-xdist too, for the `-n 4` run (null: that run goes without -n). */
const XDIST = PYTHONS.find((p) => p.pytest && p.xdist) ?? null;

/** examples/pytest, run the way a developer runs it: real pytest processes, concurrently, interrupted. */
// Without a Python with pytest on PATH this file skips; the global setup has printed one line saying so.
describe.skipIf(PYTHON === null)('examples/pytest', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const pytestEnv = (extra: NodeJS.ProcessEnv = {}) => ({
    PYTHONPATH: FIXTURES,
    PYTHONDONTWRITEBYTECODE: '1',
    STAMP_LOG: join(sandbox.dir, 'stamps.log'),
    ...extra,
  });
  const ARGS = ['-m', 'pytest', '-p', 'stamp_plugin', '-p', 'no:cacheprovider'];

  it(`two concurrent runs (the second ${XDIST ? 'with pytest-xdist and -n 4' : 'without -n 4: no pytest-xdist on PATH'}): both pass, one at a time, the leftover reaped and named`, async () => {
    sandbox = new TestSandbox();
    const root = copyExample(sandbox.dir);
    const first = sandbox.start(ARGS, {
      file: PYTHON!.path,
      cwd: root,
      env: pytestEnv({ PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1' }),
    });
    const second = XDIST
      ? sandbox.start([...ARGS, '-n', '4'], { file: XDIST.path, cwd: join(root, 'tests'), env: pytestEnv() })
      : sandbox.start(ARGS, {
          file: PYTHON!.path,
          cwd: join(root, 'tests'),
          env: pytestEnv({ PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1' }),
        });
    const results = await Promise.all([first.finished, second.finished]);
    for (const r of results) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^=+ 6 passed/m);
      expect(r.stdout).toMatch(/^=+ seq-test: ended 1 leftover process of this session =+$/m);
      expect(r.stdout).toMatch(/^pid \d+ \(SIGTERM\): sleep 300$/m);
      expect(r.stdout).toMatch(/^seq-test: subprocess\.run is seq_subprocess\.run/m);
    }
    if (XDIST) {
      expect(results[1]!.stdout).toMatch(
        /^seq-test: sequential: pytest-xdist parallelism turned off \(-n 4 ignored\)$/m,
      );
    }
    // One waited for the other, with the CLI's queue line.
    const waited = results.filter((r) => /^seq-test: waiting for the lock on /m.test(r.stderr));
    expect(waited).toHaveLength(1);
    expect(waited[0]!.stderr).toMatch(/held by pid \d+ \(pytest -p stamp_plugin -p no:cacheprovider.*\)/);
    // No overlap: S E S E, and the two sessions are the two pytest processes.
    const log = stamps(join(sandbox.dir, 'stamps.log'));
    expect(log.map((s) => s.kind)).toEqual(['S', 'E', 'S', 'E']);
    expect(log[0]!.pid).toBe(log[1]!.pid);
    expect(new Set(log.map((s) => s.pid))).toEqual(new Set([first.child.pid, second.child.pid]));
    expect(log[1]!.at).toBeLessThanOrEqual(log[2]!.at);
    expect(allTickets(sandbox.stateDir)).toEqual([]);
  }, 300_000);

  it('Ctrl-C (SIGINT to the process group) mid-run releases the lock and leaves no process', async () => {
    sandbox = new TestSandbox();
    const root = copyExample(sandbox.dir);
    // Its own process group, like a terminal's foreground job.
    const child = spawn(PYTHON!.path, ARGS, {
      cwd: root,
      env: sandbox.env(pytestEnv({ PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1', PYTHONUNBUFFERED: '1' })),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => {
      output.stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output.stderr += d.toString();
    });
    const finished = new Promise<Finished>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, ...output }));
    });
    // Mid-run: the forgotten `sleep 300` exists (first test file) and the session holds the lock.
    await waitFor(() => stamps(join(sandbox.dir, 'stamps.log')).length === 1, 60_000, 'the session to hold');
    // Inside test_some_work (a one-second sleep, no fixture): interrupting pytest inside a fixture's setup can
    // trip pytest's own teardown (a KeyError on tmp_path's stash in pytest 9), which is not what this tests.
    await waitFor(() => /tests\/test_tools\.py \.{4}/.test(output.stdout), 60_000, 'test_some_work to start');
    expect(allTickets(sandbox.stateDir)).toContainEqual(expect.stringContaining(`-${child.pid}.`));
    process.kill(-(child.pid as number), 'SIGINT');
    const result = await finished;
    expect(result.code, result.stdout + result.stderr).toBe(2); // pytest's "interrupted"
    expect(result.stdout).toMatch(/KeyboardInterrupt/);
    expect(result.stdout).toMatch(/^pid \d+ \(SIGTERM\): sleep 300$/m);
    expect(allTickets(sandbox.stateDir)).toEqual([]);
    expect(sandbox.ours()).toEqual([]);
  }, 300_000);
});
