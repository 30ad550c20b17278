import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { isGone, processTable } from '../src/proc/index.js';
import { parseStat } from '../src/proc/linux.js';

// A /proc/PID/stat line; fields after the command name are numbered from 3 (state).
function statLine(comm: string, state = 'S'): string {
  const after = [
    state,
    '1',
    '4242',
    '4242',
    '0',
    '-1',
    '4194560',
    '0',
    '0',
    '0',
    '0',
    '1',
    '2',
    '0',
    '0',
    '20',
    '0',
    '1',
    '0',
    '987654',
    '1234567',
    '300',
  ];
  return `4243 (${comm}) ${after.join(' ')} 0 0 0\n`;
}

describe('parseStat', () => {
  it('reads the fields seq-test uses', () => {
    expect(parseStat(4243, statLine('sleep'), 4096)).toEqual({
      pid: 4243,
      comm: 'sleep',
      state: 'S',
      ppid: 1,
      pgid: 4242,
      sid: 4242,
      start: 987654,
      rssBytes: 300 * 4096,
      cpuTicks: 1 + 2, // utime (field 14) + stime (field 15)
    });
  });

  it('splits after the last ")" so a command name with spaces and parentheses cannot shift fields', () => {
    const info = parseStat(4243, statLine('a) Z 1 (b'), 4096);
    expect(info?.comm).toBe('a) Z 1 (b');
    expect(info?.state).toBe('S');
    expect(info?.start).toBe(987654);
  });

  it('rejects garbage', () => {
    expect(parseStat(1, '', 4096)).toBeUndefined();
    expect(parseStat(1, 'no parens here', 4096)).toBeUndefined();
  });

  it('zombies and missing entries count as gone', () => {
    expect(isGone(parseStat(4243, statLine('x', 'Z'), 4096))).toBe(true);
    expect(isGone(parseStat(4243, statLine('x', 'X'), 4096))).toBe(true);
    expect(isGone(undefined)).toBe(true);
    expect(isGone(parseStat(4243, statLine('x', 'R'), 4096))).toBe(false);
  });
});

describe.runIf(process.platform === 'linux')('the live Linux table', () => {
  const table = processTable();

  it('sees this process with its own start time, environment and command line', () => {
    const self = table.get(process.pid);
    expect(self?.pid).toBe(process.pid);
    expect(self?.ppid).toBe(process.ppid);
    expect(self?.start).toBeGreaterThan(0);
    expect(self?.rssBytes).toBeGreaterThan(0);
    expect(table.list().some((p) => p.pid === process.pid)).toBe(true);
    expect(table.envValue(process.pid, 'PATH')).toBe(process.env.PATH);
    expect(table.envValue(process.pid, 'SEQ_TEST_NO_SUCH_VARIABLE')).toBeUndefined();
    expect(table.commandLine(process.pid)).toContain('node');
    expect(table.bootId()).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a pid that does not exist is gone', () => {
    expect(table.get(2 ** 22 + 1)).toBeUndefined();
    expect(table.envValue(2 ** 22 + 1, 'PATH')).toBeUndefined();
    expect(table.children?.(2 ** 22 + 1)).toBeUndefined();
  });

  it('tells the pid counter: a process started after a reading has a pid after it (modulo the limit)', async () => {
    const before = table.pidCounter?.();
    expect(before?.max).toBeGreaterThan(before?.last ?? Number.POSITIVE_INFINITY);
    const child = spawn('true');
    await once(child, 'exit');
    const after = table.pidCounter?.() as { last: number; max: number };
    const mark = before?.last as number;
    const distance = (pid: number) => (pid - mark + after.max) % after.max;
    expect(distance(child.pid as number)).toBeGreaterThan(0);
    expect(distance(child.pid as number)).toBeLessThanOrEqual(distance(after.last));
  });

  it('lists the children of a process', async () => {
    const shell = spawn('sh', ['-c', 'sleep 30 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let sleeper: number | undefined;
    try {
      const [line] = (await once(shell.stdout, 'data')) as [Buffer];
      sleeper = Number(line.toString().trim());
      expect(table.children?.(process.pid)).toContain(shell.pid);
      expect(table.children?.(shell.pid as number)).toEqual([sleeper]);
      expect(table.children?.(sleeper)).toEqual([]);
    } finally {
      if (sleeper) process.kill(sleeper, 'SIGKILL');
      shell.kill('SIGKILL');
      await once(shell, 'exit');
    }
  });
});
