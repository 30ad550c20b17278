import type { EndedProcess } from '@seq-test/core';
import { describe, expect, it } from 'vitest';
import { askedInBand } from '../src/in-band.js';
import type { Summary } from '../src/state.js';
import { describeSummary, isJestWorker, worthSaying } from '../src/summary.js';

const leftover = (pid: number, command: string): EndedProcess =>
  ({ pid, command, signal: 'SIGTERM' }) as unknown as EndedProcess;
const summary = (ended: EndedProcess[]): Summary => ({
  key: '/p',
  waitedMs: 0,
  nested: false,
  disabled: false,
  ended,
});

describe('describeSummary', () => {
  // Where the project lives must not decide whether the summary names what it ended: the command of a
  // leftover started from a checkout at a long path is mostly path.
  it.each([8, 40, 120])('names the leftover by its script and arguments from a %i-character checkout path', (n) => {
    const checkout = `/${'d'.repeat(n - 1)}`;
    const command = `/usr/local/bin/node ${checkout}/examples/jest/test/greeting-server.js welcome`;
    const line = describeSummary(summary([leftover(4242, command)]));
    expect(line).toMatch(/ended 1 process the tests left running: 4242 \S*node \S*greeting-server\.js welcome$/);
    expect(line.length).toBeLessThan(200);
  });

  it('keeps a short command whole', () => {
    expect(describeSummary(summary([leftover(7, 'sleep 300')]))).toContain(': 7 sleep 300');
  });

  it('cuts a long command without paths at the end', () => {
    const line = describeSummary(summary([leftover(7, `echo ${'x'.repeat(200)}`)]));
    expect(line).toMatch(/: 7 echo x+…$/);
    expect(line.length).toBeLessThan(200);
  });
});

describe('worthSaying', () => {
  it('is silent for a run that ended nothing, unless SEQ_TEST_VERBOSE=1', () => {
    const previous = process.env.SEQ_TEST_VERBOSE;
    try {
      delete process.env.SEQ_TEST_VERBOSE;
      expect(worthSaying(summary([]))).toBe(false);
      expect(worthSaying({ ...summary([]), waitedMs: 2500, cause: 'SIGINT' })).toBe(false);
      expect(worthSaying(summary([leftover(7, 'sleep 300')]))).toBe(true);
      process.env.SEQ_TEST_VERBOSE = '1';
      expect(worthSaying(summary([]))).toBe(true);
    } finally {
      if (previous === undefined) delete process.env.SEQ_TEST_VERBOSE;
      else process.env.SEQ_TEST_VERBOSE = previous;
    }
  });
});

describe('isJestWorker', () => {
  it('knows jest-worker’s child of Jest 29 and 30, and nothing else', () => {
    expect(isJestWorker('/usr/bin/node /p/node_modules/jest-worker/build/workers/processChild.js')).toBe(true);
    expect(isJestWorker('/usr/bin/node /p/node_modules/jest-worker/build/processChild.js')).toBe(true);
    expect(isJestWorker('node /p/test/processChild.js')).toBe(false);
    expect(isJestWorker('sleep 300')).toBe(false);
  });
});

describe('askedInBand', () => {
  const config = (extra: Record<string, unknown> = {}) => ({ rootDir: '/p', maxWorkers: 1, bail: 0, ...extra });
  it('only on the user’s word: -i, --runInBand (any spelling), or --detectOpenHandles', () => {
    for (const argv of [['-i'], ['--runInBand'], ['--run-in-band'], ['--runInBand=true'], ['--ci', '-i', 'path']]) {
      expect(askedInBand(config(), argv), argv.join(' ')).toBe(true);
    }
    expect(askedInBand(config({ runInBand: true }), [])).toBe(true);
    expect(askedInBand(config({ detectOpenHandles: true }), [])).toBe(true);
    for (const argv of [[], ['-w', '1'], ['--maxWorkers=1'], ['--ci'], ['--', '-i'], ['--runInBand=false']]) {
      expect(askedInBand(config(), argv), argv.join(' ')).toBe(false);
    }
  });
});
