import { describe, expect, it } from 'vitest';
import { type EndingStep, endingPolicy } from '../src/ownership.js';

// The one TERM -> KILL policy (ownership.ts), driven step by step: what it sends, and when it looks or waits.
describe('endingPolicy', () => {
  const a = { pid: 10, start: 1 };
  const b = { pid: 11, start: 1 };
  const c = { pid: 12, start: 1 };
  const reused = { pid: 10, start: 2 }; // pid 10 again, another process

  function drive(first: NodeJS.Signals, graceMs: number) {
    const sent: string[] = [];
    let hurry = false;
    const steps = endingPolicy<{ pid: number; start: number }>({
      first,
      graceMs,
      pollMs: 50,
      send: (target, signal) => sent.push(`${target.pid}:${target.start} ${signal}`),
      hurry: () => hurry,
    });
    return { steps, sent, hurry: () => (hurry = true) };
  }
  const look: EndingStep = { kind: 'look' };

  it('sends the first signal once per process, newcomers included, and SIGKILL once hurried', () => {
    const { steps, sent, hurry } = drive('SIGTERM', 60_000);
    expect(steps.next().value).toEqual(look);
    expect(steps.next([a, b]).value).toEqual({ kind: 'pause', ms: 50 });
    expect(steps.next().value).toEqual(look);
    expect(steps.next([a, c, reused]).value).toEqual({ kind: 'pause', ms: 50 });
    expect(sent).toEqual(['10:1 SIGTERM', '11:1 SIGTERM', '12:1 SIGTERM', '10:2 SIGTERM']);
    hurry(); // a second interrupt: the rest of the grace period is skipped
    expect(steps.next().value).toEqual(look);
    expect(steps.next([c]).value).toEqual({ kind: 'pause', ms: 20 });
    expect(sent.at(-1)).toBe('12:1 SIGKILL');
    expect(steps.next().value).toEqual(look);
    expect(steps.next([])).toEqual({ done: true, value: true });
  });

  it('ends at the first look that finds nothing, without any signal', () => {
    const { steps, sent } = drive('SIGTERM', 1000);
    steps.next();
    expect(steps.next([])).toEqual({ done: true, value: true });
    expect(sent).toEqual([]);
  });

  it('SIGKILL first skips the grace period; a process that never goes is given up on', () => {
    const { steps, sent } = drive('SIGKILL', 60_000);
    let step = steps.next();
    let rounds = 0;
    while (!step.done) {
      if (step.value.kind === 'look') {
        rounds++;
        step = steps.next([a]);
      } else step = steps.next();
    }
    expect(step.value).toBe(false);
    expect(rounds).toBe(200);
    expect(new Set(sent)).toEqual(new Set(['10:1 SIGKILL']));
  });

  it('with no grace, what is left after the first signal gets SIGKILL at the next look', () => {
    const { steps, sent } = drive('SIGINT', 0);
    steps.next();
    expect(steps.next([a]).value).toEqual(look);
    expect(steps.next([a]).value).toEqual({ kind: 'pause', ms: 20 });
    expect(sent).toEqual(['10:1 SIGINT', '10:1 SIGKILL']);
  });
});
