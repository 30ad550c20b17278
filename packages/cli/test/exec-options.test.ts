import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toExecOptions } from '../src/exec-options.js';

const dir = mkdtempSync(join(tmpdir(), 'seq-test-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('toExecOptions', () => {
  it('applies the documented defaults', () => {
    expect(toExecOptions({}, ['npm', 'test'])).toEqual({
      command: ['npm', 'test'],
      killSignal: 'SIGTERM',
      graceMs: 5000,
      lingerMs: 3000,
      waitAll: false,
      lingerIdle: false,
      retries: 0,
      retryDelayMs: 0,
    });
  });

  it('converts every flag', () => {
    const log = join(dir, 'run.log');
    expect(
      toExecOptions(
        {
          timeout: '1.5',
          killSignal: 'int',
          grace: '2',
          linger: '0',
          lingerIdle: true,
          waitAll: true,
          retry: '3',
          retryDelay: '0.25',
          maxMemory: '512M',
          json: true,
          log,
        },
        ['x'],
      ),
    ).toEqual({
      command: ['x'],
      timeoutMs: 1500,
      killSignal: 'SIGINT',
      graceMs: 2000,
      lingerMs: 0,
      waitAll: true,
      lingerIdle: true,
      retries: 3,
      retryDelayMs: 250,
      maxMemoryBytes: 512 * 1024 * 1024,
      capture: true,
      echoStdout: false,
      logFile: log,
    });
  });

  it.each([
    [{ timeout: '-1' }, /--timeout/],
    [{ killSignal: 'NOPE' }, /--kill-signal/],
    [{ grace: 'x' }, /--grace/],
    [{ retry: '-1' }, /--retry/],
    [{ maxMemory: '1Q' }, /--max-memory/],
    [{ log: '' }, /--log expects a file name/],
    [{ log: join(dir, 'missing-dir', 'x.log') }, /--log cannot write .*ENOENT/],
  ])('rejects %j', (raw, message) => {
    expect(() => toExecOptions(raw, ['x'])).toThrow(message);
  });
});
