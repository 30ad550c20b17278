import { describe, expect, it } from 'vitest';
import { AttemptState } from '../src/runner/attempt-state.js';
import { exitCodeOf } from '../src/runner/exit-code.js';
import { parseHelperReport } from '../src/runner/helper-reports.js';

describe('the helper report lines', () => {
  it('parses each kind into a typed event', () => {
    expect(parseHelperReport('pid 4242')).toEqual({ kind: 'pid', pid: 4242 });
    expect(parseHelperReport('exit 3 2048')).toEqual({ kind: 'exit', code: 3, maxRssKb: 2048 });
    expect(parseHelperReport('signal 9 100')).toEqual({ kind: 'signal', signal: 'SIGKILL', maxRssKb: 100 });
    expect(parseHelperReport('peak 512')).toEqual({ kind: 'peak', maxRssKb: 512 });
  });

  it('passes a line it does not know on as unknown', () => {
    expect(parseHelperReport('hello 1 2')).toEqual({ kind: 'unknown', line: 'hello 1 2' });
  });
});

describe('the end of an attempt', () => {
  const exited = { kind: 'exited', code: 0 } as const;

  it('is the command own status when seq-test stopped nothing', () => {
    const state = new AttemptState();
    expect(exitCodeOf(state.endOf({ kind: 'exited', code: 7 }))).toBe(7);
    expect(exitCodeOf(state.endOf({ kind: 'signalled', signal: 'SIGTERM' }))).toBe(143);
    expect(exitCodeOf(state.endOf({ kind: 'lost' }))).toBe(125);
  });

  it('keeps the first reason the tree was ended for', () => {
    const state = new AttemptState();
    expect(state.stopping('memory')).toBe(true);
    expect(state.stopping('timeout')).toBe(false);
    expect(state.endOf(exited)).toEqual({ kind: 'memory-exceeded', main: exited });
    expect(exitCodeOf(state.endOf(exited))).toBe(121);
  });

  it('lets an interrupt win over a limit, and remembers the limit', () => {
    const state = new AttemptState();
    state.stopping('timeout');
    expect(state.interrupt('SIGINT')).toBe(true);
    expect(state.interrupt('SIGTERM')).toBe(false);
    expect(state.endOf(exited)).toEqual({ kind: 'interrupted', signal: 'SIGINT', main: exited, limit: 'timeout' });
    expect(exitCodeOf(state.endOf(exited))).toBe(130);
  });

  it('does not count leftovers ended after --linger against the command', () => {
    const state = new AttemptState();
    state.stopping('linger');
    expect(exitCodeOf(state.endOf({ kind: 'exited', code: 0 }))).toBe(0);
  });
});
