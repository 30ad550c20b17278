import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { finishWithin } from './helpers.js';

// A --log that cannot be written (a full disk: /dev/full) is reported once and the run goes on, with the
// command's own exit code; seq-test exits, and leaves nothing behind (its parked helper included).

let sb: TestSandbox;
beforeEach(() => {
  sb = new TestSandbox();
});
afterEach(() => {
  sb.cleanup();
});

const logLines = (stderr: string) => stderr.split('\n').filter((line) => line.includes('--log'));

describe('--log that cannot be written', () => {
  for (const command of ['run', 'exec'])
    it(`${command}: a full disk from the start (/dev/full)`, async () => {
      const started = sb.start([command, '--log', '/dev/full', '--', 'sh', '-c', 'echo out; exit 3']);
      const result = await finishWithin(started, 30_000);
      expect(result.code, result.stderr).toBe(3);
      expect(result.stdout).toBe('out\n');
      expect(result.stderr).not.toMatch(/internal error|at /);
      expect(logLines(result.stderr)).toHaveLength(1);
      expect(logLines(result.stderr)[0]).toMatch(/^seq-test: --log: cannot write \/dev\/full \(ENOSPC\)/);
      expect(sb.ours()).toEqual([]);
    });

  it('a disk that fills up during the run (and with --retry: still one report)', async () => {
    // The log is a symbolic link to a file; the command re-points it to /dev/full half way through.
    const log = join(sb.dir, 'run.log');
    symlinkSync(join(sb.dir, 'real.log'), log);
    const script = `echo one; ln -sfn /dev/full ${log}; echo two; echo three >&2; exit 4`;
    const started = sb.start(['exec', '--retry', '1', '--log', log, '--', 'sh', '-c', script]);
    const result = await finishWithin(started, 30_000);
    expect(result.code, result.stderr).toBe(4);
    expect(result.stdout).toBe('one\ntwo\none\ntwo\n');
    expect(result.stderr).toContain('three\n');
    expect(result.stderr).not.toMatch(/internal error|at /);
    expect(logLines(result.stderr)).toHaveLength(1);
    expect(readFileSync(join(sb.dir, 'real.log'), 'utf8')).toContain('=== seq-test attempt 1/2');
    expect(sb.ours()).toEqual([]);
  });
});
