import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SeqTestError } from '../src/errors.js';
import { acquireLock } from '../src/lock/acquire.js';
import { InvalidOptionError } from '../src/options.js';
import { endProcesses } from '../src/ownership.js';
import { runCommand } from '../src/run-command.js';
import { execTree } from '../src/runner.js';

// Issue 11, defect 2: values core cannot honour are refused at its public boundary with a typed error that
// names the option, the value and what it expects, before anything starts or joins a queue.
const stateDir = mkdtempSync(join(tmpdir(), 'seq-test-options-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<InvalidOptionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidOptionError);
  expect(error).toBeInstanceOf(SeqTestError); // the CLI's one-line report and exit 125
  return error as InvalidOptionError;
}

describe('execTree', () => {
  const command = [process.execPath, '-e', ''];
  it.each([
    ['graceMs', Number.NaN, 'execTree({ graceMs }) expects a number of milliseconds, 0 or more, got NaN'],
    ['graceMs', -1, 'execTree({ graceMs }) expects a number of milliseconds, 0 or more, got -1'],
    ['retries', 1.5, 'execTree({ retries }) expects a whole number, 0 or more, got 1.5'],
    ['timeoutMs', '10', 'execTree({ timeoutMs }) expects a number of milliseconds, 0 or more, got "10"'],
    ['lingerMs', Number.NaN, 'execTree({ lingerMs }) expects a number of milliseconds, 0 or more, got NaN'],
    ['retryDelayMs', -5, 'execTree({ retryDelayMs }) expects a number of milliseconds, 0 or more, got -5'],
    ['maxMemoryBytes', 0, 'execTree({ maxMemoryBytes }) expects a number of bytes greater than 0, got 0'],
    ['killSignal', 'SIGNOPE', 'execTree({ killSignal }) expects a signal name such as "SIGTERM", got "SIGNOPE"'],
  ])('%s: %s is refused', async (option, value, message) => {
    const error = await refusal(execTree({ command, [option]: value }));
    expect(error.message).toBe(message);
    expect(error.option).toBe(`execTree({ ${option} })`);
    expect(error.value).toBe(value);
  });
});

describe('acquireLock', () => {
  const base = { command: 'test', key: 'options-test', env: { SEQ_TEST_STATE_DIR: stateDir } };
  it.each([
    ['slots', 0, 'acquireLock({ slots }) expects a whole number, 1 or more, got 0'],
    ['slots', 1.5, 'acquireLock({ slots }) expects a whole number, 1 or more, got 1.5'],
    [
      'waitTimeoutMs',
      Number.NaN,
      'acquireLock({ waitTimeoutMs }) expects a number of milliseconds, 0 or more, got NaN',
    ],
    ['pollMs', 0, 'acquireLock({ pollMs }) expects a number of milliseconds greater than 0, got 0'],
    ['reapGraceMs', -1, 'acquireLock({ reapGraceMs }) expects a number of milliseconds, 0 or more, got -1'],
  ])('%s: %s is refused, and no ticket is left', async (option, value, message) => {
    const error = await refusal(acquireLock({ ...base, [option]: value }));
    expect(error.message).toBe(message);
    // Nothing joined the queue: a valid request holds at once.
    const lock = await acquireLock({ ...base, noWait: true });
    lock.release();
  });
});

describe('runCommand', () => {
  it('timeoutMs NaN is refused before anything runs', () => {
    expect(() => runCommand('true', { timeoutMs: Number.NaN })).toThrow(
      'runCommand({ timeoutMs }) expects a number of milliseconds, 0 or more, got NaN',
    );
  });
});

describe('endProcesses', () => {
  it('graceMs NaN is refused before anything is signalled', async () => {
    const error = await refusal(endProcesses([], Number.NaN));
    expect(error.message).toBe('endProcesses({ graceMs }) expects a number of milliseconds, 0 or more, got NaN');
  });
});
