import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogFile, openAttemptLog } from '../src/attempt-log.js';
import type { AttemptResult } from '../src/runner.js';

const dir = mkdtempSync(join(tmpdir(), 'seq-test-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logFile = (path: string) =>
  new LogFile(path, (error) => {
    throw error;
  });

const result = (over: Partial<AttemptResult> = {}): AttemptResult => ({
  attempt: 1,
  exitCode: 0,
  signal: null,
  timedOut: false,
  memoryExceeded: false,
  interrupted: null,
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 1500,
  peakRssBytes: 2 * 1024 * 1024,
  peakProcesses: 3,
  reaped: [],
  ...over,
});

describe('openAttemptLog', () => {
  it('writes the header at once, then output line by line with prefixes', () => {
    const file = join(dir, 'a.log');
    const log = openAttemptLog(logFile(file), {
      command: ['sh', '-c', "echo 'hi there'"],
      cwd: '/work',
      attempt: 1,
      maxAttempts: 2,
      startedAt: new Date('2026-01-01T00:00:00.000Z'),
    });
    expect(readFileSync(file, 'utf8')).toBe(
      `=== seq-test attempt 1/2 at 2026-01-01T00:00:00.000Z\ncommand: sh -c 'echo '\\''hi there'\\'''\ncwd: /work\n`,
    );
    log.output('stdout', Buffer.from('one\ntw'));
    log.output('stderr', Buffer.from('warn\n'));
    log.output('stdout', Buffer.from('o\nthree'));
    const body = readFileSync(file, 'utf8').split('\n').slice(3).join('\n');
    expect(body).toBe('out| one\nerr| warn\nout| two\n'); // "three" waits for its newline
    log.finish(
      result({
        exitCode: 124,
        timedOut: true,
        reaped: [{ pid: 42, command: 'sleep 300', signal: 'SIGTERM', reason: 'timeout' }],
      }),
    );
    expect(
      readFileSync(file, 'utf8').endsWith(
        'out| three\n--- timed out: exit 124 after 1.5 s; peak 2.0 MiB in 3 process(es); ended: 42 (sleep 300) SIGTERM\n\n',
      ),
    ).toBe(true);
  });

  it.each([
    [{ exitCode: 3 }, '--- exited: exit 3'],
    [{ exitCode: 137, signal: 'SIGKILL' as const }, '--- killed by SIGKILL: exit 137'],
    [{ exitCode: 130, interrupted: 'SIGINT' as const }, '--- interrupted by SIGINT: exit 130'],
    [{ exitCode: 121, memoryExceeded: true }, '--- memory limit exceeded: exit 121'],
  ])('describes how the attempt ended: %j', (over, line) => {
    const file = join(dir, `${line.length}-${Math.random()}.log`);
    const log = openAttemptLog(logFile(file), {
      command: ['x'],
      cwd: '/',
      attempt: 1,
      maxAttempts: 1,
      startedAt: new Date(),
    });
    log.finish(result(over));
    expect(readFileSync(file, 'utf8')).toContain(line);
  });

  it('reports a write that fails once, and writes nothing more', () => {
    const failures: string[] = [];
    const file = new LogFile('/dev/full', (error) => failures.push(error.code ?? ''));
    const log = openAttemptLog(file, { command: ['x'], cwd: '/', attempt: 1, maxAttempts: 1, startedAt: new Date() });
    log.output('stdout', Buffer.from('one\n'));
    log.finish(result());
    expect(failures).toEqual(['ENOSPC']);
  });
});
