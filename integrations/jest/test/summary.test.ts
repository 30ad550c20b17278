import type { EndedProcess } from '@seq-test/core';
import { describe, expect, it } from 'vitest';
import type { Summary } from '../src/state.js';
import { describeSummary } from '../src/summary.js';

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
