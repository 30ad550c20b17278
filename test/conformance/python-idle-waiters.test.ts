import { describe, expect, it } from 'vitest';
import { idleWaiterCases } from '../support/idle-waiter-cases.js';
import { loggingJob, logLines, queueRuns } from '../support/queue-runs.js';
import { QUIET_MAX, quietest } from '../support/wakeups.js';
import { CONTENDER, NO_PYTHON, PYTHON, pytestProject, requireInterpreter } from './helpers.js';

// Issue 13 item 12 for the Python lock (seq_test_lock.py, what the pytest plugin and seq_subprocess wait
// with): a waiting Python process sleeps in the kernel (inotify on what can end its wait, a pidfd per owner
// it depends on) with no periodic work while nothing changes. It used to wake every 100 ms when next (a
// SIGKILLed owner changes no file) and every 2 s further back. The cases are those of `seq-test run`
// (test/support/idle-waiter-cases.ts), with Python waiters behind `seq-test run` holders. pidfds need Python
// 3.9+ (os.pidfd_open) and Linux 5.3+; elsewhere the poll remains (the unit tests, under every Python).

const [major = 0, minor = 0] = NO_PYTHON
  ? []
  : requireInterpreter(PYTHON)
      .split('.')
      .map((part) => Number(part));
const usable = process.platform === 'linux' && !NO_PYTHON && (major > 3 || (major === 3 && minor >= 9));

describe.runIf(usable)('a waiting Python lock does no periodic work', () => {
  // py_contender off a terminal: its wait line is printed once, and asks for no reports on a timer.
  const { harness, queue, sleepingHolder } = idleWaiterCases((h, env, log, name) =>
    h.sandbox.start([CONTENDER, '--', ...loggingJob(log, name)], { file: PYTHON, env }),
  );

  it('a pytest waiting for the lock (the plugin: its lock and its parent watch) makes no wakeups while nothing changes', async () => {
    const { key, env, log } = harness.setup('pytest');
    const holder = await sleepingHolder(env, log);
    const root = pytestProject(harness.sandbox, {
      'test_logs.py': `def test_logs():\n    open(${JSON.stringify(log)}, "a").write("pytest\\n")\n`,
    });
    const [pytest] = await queueRuns(harness.sandbox.stateDir, key, ['pytest'], () =>
      harness.sandbox.start(['-m', 'pytest', '-p', 'no:cacheprovider'], {
        file: PYTHON,
        cwd: root,
        env: { ...env, PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1' },
      }),
    );
    expect(await quietest(pytest?.child.pid as number)).toBeLessThanOrEqual(QUIET_MAX);
    holder.child.kill('SIGTERM');
    const result = await pytest?.finished;
    expect(result?.code, `${result?.stdout}${result?.stderr}`).toBe(0);
    expect(logLines(log)).toEqual(['holder', 'pytest']);
    // Off a terminal the wait line is still printed, once.
    expect(result?.stderr.match(/^seq-test: waiting for the lock on /gm)).toHaveLength(1);
  });

  it('without inotify (SEQ_TEST_NO_INOTIFY=1) the next Python waiter still notices a SIGKILLed holder (the poll)', async () => {
    const { key, env: keyEnv, log } = harness.setup('no-inotify');
    const env = { ...keyEnv, SEQ_TEST_NO_INOTIFY: '1' };
    const holder = await sleepingHolder(env, log);
    const [next] = await queue(key, env, log, ['w1']);
    holder.child.kill('SIGKILL');
    expect((await next?.finished)?.code).toBe(0);
    expect(logLines(log)).toEqual(['holder', 'w1']);
  });
});
