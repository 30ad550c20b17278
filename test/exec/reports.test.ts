import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, TestSandbox } from '../support/processes.js';
import { pidFile } from './helpers.js';

// --retry, --json, --log and --max-memory.

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

const runs = () => readFileSync(join(sb.dir, 'runs.txt'), 'utf8');

describe('--retry', () => {
  it('runs 1 + N attempts of a command that keeps failing, and exits with the last status', async () => {
    const result = await sb.run(['exec', '--retry', '2', '--', 'sh', '-c', 'echo run >> runs.txt; exit 4']);
    expect(result.code).toBe(4);
    expect(runs()).toBe('run\nrun\nrun\n');
  });

  it('stops at the first success', async () => {
    const command = 'echo run >> runs.txt; [ "$(wc -l < runs.txt)" -ge 2 ]';
    const result = await sb.run(['exec', '--json', '--retry', '5', '--', 'sh', '-c', command]);
    expect(result.code).toBe(0);
    expect(runs()).toBe('run\nrun\n');
    const json = JSON.parse(result.stdout);
    expect(json.attempts.map((a: { exitCode: number }) => a.exitCode)).toEqual([1, 0]);
  });

  it('retries after a timeout too', async () => {
    const result = await sb.run([
      'exec',
      '--retry',
      '1',
      '--timeout',
      '0.3',
      '--',
      'sh',
      '-c',
      'echo run >> runs.txt; sleep 300',
    ]);
    expect(result.code).toBe(124);
    expect(runs()).toBe('run\nrun\n');
    expect(sb.ours()).toEqual([]);
  });
});

describe('--json', () => {
  it('reports status, timing, peaks, leftovers and the output', async () => {
    const command = 'echo out; echo err >&2; sleep 300 & echo $! > bg.pid; sleep 0.5; exit 3';
    const result = await sb.run(['exec', '--json', '--linger', '0.2', '--', 'sh', '-c', command]);
    expect(result.code, result.stderr).toBe(3);
    const bg = await pidFile(sb, 'bg.pid', 0);
    const json = JSON.parse(result.stdout); // stdout holds the document and nothing else
    expect(json).toMatchObject({
      version: 1,
      command: ['sh', '-c', command],
      exitCode: 3,
      signal: null,
      timedOut: false,
      memoryExceeded: false,
      interrupted: null,
      stdout: 'out\n',
      stderr: 'err\n',
    });
    expect(json.durationMs).toBeGreaterThan(0);
    expect(json.peakRssBytes).toBeGreaterThan(0);
    expect(json.peakProcesses).toBeGreaterThanOrEqual(2); // sh and its background sleep, for half a second
    expect(json.reaped).toEqual([{ attempt: 1, pid: bg, command: 'sleep 300', signal: 'SIGTERM', reason: 'linger' }]);
    expect(json.attempts).toHaveLength(1);
    expect(json.attempts[0]).toMatchObject({ attempt: 1, exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(Date.parse(json.attempts[0].startedAt)).not.toBeNaN();
    // stderr is still echoed live; the leftover notice follows it.
    expect(result.stderr).toBe(`err\nseq-test: ended leftover process ${bg} (sleep 300) with SIGTERM\n`);
    expect(isAlive(bg)).toBe(false);
  });

  it('reports a peak even for a command shorter than one sampling interval', async () => {
    const json = JSON.parse((await sb.run(['exec', '--json', '--', 'true'])).stdout);
    expect(json.exitCode).toBe(0);
    expect(json.peakRssBytes).toBeGreaterThan(0);
    expect(json.peakProcesses).toBe(1);
  });

  it('reports death by signal and timeouts', async () => {
    const killed = JSON.parse((await sb.run(['exec', '--json', '--', 'sh', '-c', 'kill -KILL $$'])).stdout);
    expect(killed).toMatchObject({ exitCode: 137, signal: 'SIGKILL', timedOut: false });
    const timedOut = JSON.parse((await sb.run(['exec', '--json', '--timeout', '0.3', '--', 'sleep', '300'])).stdout);
    expect(timedOut).toMatchObject({ exitCode: 124, signal: 'SIGTERM', timedOut: true });
  });

  it('lists every attempt', async () => {
    const result = await sb.run([
      'exec',
      '--json',
      '--retry',
      '2',
      '--',
      'sh',
      '-c',
      'echo run >> runs.txt; echo try; exit 2',
    ]);
    const json = JSON.parse(result.stdout);
    expect(json.exitCode).toBe(2);
    expect(json.attempts.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2, 3]);
    expect(json.attempts.every((a: { stdout: string }) => a.stdout === 'try\n')).toBe(true);
  });
});

describe('--log', () => {
  it('records each attempt: command, out|/err| lines, exit status and timing', async () => {
    const log = join(sb.dir, 'run.log');
    const command = "echo run >> runs.txt; echo 'hello world'; echo oops >&2; printf partial; exit 5";
    const result = await sb.run(['exec', '--log', log, '--retry', '1', '--', 'sh', '-c', command]);
    expect(result.code).toBe(5);
    const text = readFileSync(log, 'utf8');
    const attempts = text.split(/^(?==== seq-test attempt)/m);
    expect(attempts).toHaveLength(2);
    for (const [i, attempt] of attempts.entries()) {
      expect(attempt).toMatch(new RegExp(`^=== seq-test attempt ${i + 1}/2 at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n`));
      expect(attempt).toContain(`command: sh -c '${command.replace(/'/g, `'\\''`)}'\n`);
      expect(attempt).toContain(`cwd: ${sb.dir}\n`);
      expect(attempt).toContain('out| hello world\n');
      expect(attempt).toContain('err| oops\n');
      expect(attempt).toContain('out| partial\n'); // a last line without newline is not lost
      expect(attempt).toMatch(/^--- exited: exit 5 after \d+(\.\d)? m?s; peak .* in \d+ process/m);
    }
  });

  it('records a timeout and the processes it ended', async () => {
    const log = join(sb.dir, 'run.log');
    const result = await sb.run(['exec', '--log', log, '--timeout', '0.5', '--', 'sh', '-c', 'sleep 300 & sleep 300']);
    expect(result.code).toBe(124);
    expect(readFileSync(log, 'utf8')).toMatch(/^--- timed out: exit 124 after .*; ended: \d+ \(sleep 300\) SIGTERM/m);
  });
});

describe('--max-memory', () => {
  // 200 MiB, every page touched (filled), then idle: one Node process, no Python needed.
  const HOG = 'globalThis.hog = Buffer.alloc(200 * 1024 * 1024, 1); setTimeout(() => {}, 300_000);';

  it('ends a tree that grows past the limit: exit 121 and a clear message', async () => {
    const result = await sb.run(['exec', '--json', '--max-memory', '100M', '--', process.execPath, '-e', HOG]);
    expect(result.code).toBe(121);
    expect(result.stderr).toMatch(
      /^seq-test: memory limit 100 MiB exceeded: the tree uses \d+ MiB in 1 process; ending it$/m,
    );
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({ exitCode: 121, memoryExceeded: true, timedOut: false });
    expect(json.peakRssBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(sb.ours()).toEqual([]);
  });

  it('also when the hog ignores SIGTERM (SIGKILL after --grace, one message)', async () => {
    const stubborn = `process.on('SIGTERM', () => {}); ${HOG}`;
    const result = await sb.run([
      'exec',
      '--max-memory',
      '100M',
      '--grace',
      '0.5',
      '--',
      process.execPath,
      '-e',
      stubborn,
    ]);
    expect(result.code).toBe(121);
    expect(result.stderr.match(/memory limit/g)).toHaveLength(1);
    expect(result.stderr).not.toContain('internal error');
    expect(sb.ours()).toEqual([]);
  });

  it('leaves a tree under the limit alone', async () => {
    const result = await sb.run(['exec', '--max-memory', '1G', '--', 'sh', '-c', 'sleep 0.3; exit 7']);
    expect(result.code).toBe(7);
    expect(result.stderr).toBe('');
  });
});
