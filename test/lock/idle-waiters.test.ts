import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { idleWaiterCases } from '../support/idle-waiter-cases.js';
import { REPO, waitFor } from '../support/processes.js';
import { loggingJob, logLines } from '../support/queue-runs.js';

// Issue 13 item 12: a waiting run does no periodic work while nothing changes, the waiter next in line
// included. A SIGKILLed owner changes no file, so Node waiters used to poll (every 100 ms when next, every
// 2 s behind); now the helper (`seq-test-subreaper --watch-owners`) holds a pidfd per owner they depend on
// and tells them when one ends. Wakeups are counted (test/support/wakeups.ts); the cases are shared with the
// Python lock's (test/support/idle-waiter-cases.ts).

const HELPER = join(REPO, 'packages', 'core', 'dist', 'seq-test-subreaper');
const usable = process.platform === 'linux' && existsSync(HELPER);

describe.runIf(usable)('idle waiters wait without periodic work', () => {
  const { queue, sleepingHolder, harness } = idleWaiterCases((h, env, log, name) =>
    h.run(['--quiet', '--', ...loggingJob(log, name)], env),
  );

  it('without the helper (SEQ_TEST_NO_SUBREAPER=1) the next waiter still notices a SIGKILLed holder', async () => {
    const { key, env: keyEnv, log } = harness.setup('no-helper');
    const env = { ...keyEnv, SEQ_TEST_NO_SUBREAPER: '1' };
    const holder = await sleepingHolder(env, log);
    const [next] = await queue(key, env, log, ['w1']);
    holder.child.kill('SIGKILL');
    expect((await next?.finished)?.code).toBe(0);
    expect(logLines(log)).toEqual(['holder', 'w1']);
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
