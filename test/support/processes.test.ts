import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { isAlive, killPid, TestSandbox } from './processes.js';

// The support's own rules for ending processes by pid. (Signal 0 only asks whether a process exists: a
// failure here must not end the test run it is part of.)
describe('killPid', () => {
  it('refuses what kill(2) would take for a process group: 0 (an empty pid file), negatives, non-integers', () => {
    for (const pid of [0, -1, -process.pid, Number.NaN, 1.5, Number('')])
      expect(() => killPid(pid, 0), String(pid)).toThrow(/is not a process id/);
  });

  it('signals the one process it names, and says false once it is gone', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid as number;
    expect(killPid(pid, 0)).toBe(true);
    expect(killPid(pid)).toBe(true);
    await once(child, 'exit');
    expect(isAlive(pid)).toBe(false);
    expect(killPid(pid, 0)).toBe(false);
  });
});

describe('TestSandbox.start', () => {
  it('a program that cannot start finishes at once, saying why (no wait for the test timeout)', async () => {
    const sandbox = new TestSandbox();
    try {
      const started = sandbox.start([], { file: '/nonexistent/seq-test-program' });
      expect(await started.exited).toEqual({ code: null, signal: null });
      const result = await started.finished;
      expect(result.code).toBeNull();
      expect(result.stderr).toMatch(/ENOENT/);
    } finally {
      sandbox.cleanup();
    }
  });
});
