import { describe, expect, it } from 'vitest';
import { parseSignal, signalName, signalNumber } from '../src/signals.js';

describe('parseSignal', () => {
  it.each([
    ['TERM', 'SIGTERM', 15],
    ['SIGTERM', 'SIGTERM', 15],
    ['sigint', 'SIGINT', 2],
    ['int', 'SIGINT', 2],
    [' HUP ', 'SIGHUP', 1],
    ['9', 'SIGKILL', 9],
    [15, 'SIGTERM', 15],
  ])('%j is %s (%i)', (value, name, number) => {
    expect(parseSignal('--kill-signal', value)).toEqual({ name, number });
  });

  it.each(['', 'FOO', 'SIGFOO', '0', '99', '-9', '9.5', 'SIG'])('rejects %j with the option and the value', (value) => {
    expect(() => parseSignal('--kill-signal', value)).toThrow(
      `--kill-signal expects a signal name or number such as TERM, SIGINT or 9, got "${value}"`,
    );
  });
});

describe('signalName / signalNumber', () => {
  it('round-trip', () => {
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL', 'SIGQUIT'] as NodeJS.Signals[]) {
      expect(signalName(signalNumber(name))).toBe(name);
    }
  });

  it('unknown numbers have no name', () => {
    expect(signalName(0)).toBeUndefined();
    expect(signalName(12345)).toBeUndefined();
  });

  it('gives the 128+N exit codes the CLI uses', () => {
    expect(128 + signalNumber('SIGINT')).toBe(130);
    expect(128 + signalNumber('SIGTERM')).toBe(143);
    expect(128 + signalNumber('SIGHUP')).toBe(129);
    expect(128 + signalNumber('SIGKILL')).toBe(137);
  });
});
