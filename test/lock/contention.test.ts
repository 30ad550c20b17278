import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';

interface Span {
  ticket: string;
  number: number;
  start: number;
  end: number;
}

/** Each job appends "S <ticket> <ns>" and "E <ticket> <ns>" lines to the log. */
function job(log: string, ms: number): string[] {
  const seconds = (ms / 1000).toFixed(3);
  return [
    'bash',
    '-c',
    `echo "S $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}; sleep ${seconds}; echo "E $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}`,
  ];
}

function spans(log: string): Span[] {
  const byTicket = new Map<string, Partial<Span>>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, ticket, ns] = line.split(' ') as [string, string, string];
    const span = byTicket.get(ticket) ?? { ticket, number: Number(ticket.split('-')[0]) };
    if (kind === 'S') span.start = Number(BigInt(ns) / 1000n);
    else span.end = Number(BigInt(ns) / 1000n);
    byTicket.set(ticket, span);
  }
  return [...byTicket.values()] as Span[];
}

/** Most spans open at any instant. */
function maxOverlap(all: Span[]): number {
  const events = all.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]) as [number, number][];
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, delta] of events) {
    open += delta;
    max = Math.max(max, open);
  }
  return max;
}

function ticketsLeft(stateDir: string): string[] {
  if (!existsSync(stateDir)) return [];
  const left: string[] = [];
  for (const q of readdirSync(stateDir)) {
    const dir = join(stateDir, q, 'tickets');
    if (existsSync(dir)) left.push(...readdirSync(dir));
  }
  return left;
}

describe('contention', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it('50 contenders: no overlap, FIFO by ticket, all succeed, nothing left', async () => {
    sandbox = new TestSandbox();
    const log = join(sandbox.dir, 'stamps.log');
    const env = { SEQ_TEST_KEY: `contention-${sandbox.marker}` };
    const runs = Array.from({ length: 50 }, () =>
      sandbox.start(['run', '--quiet', '--', ...job(log, 10 + Math.floor(Math.random() * 90))], { env }),
    );
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual(Array(50).fill(0));
    const all = spans(log);
    expect(all).toHaveLength(50);
    expect(maxOverlap(all)).toBe(1);
    const byStart = [...all].sort((a, b) => a.start - b.start).map((s) => s.number);
    expect(byStart).toEqual([...byStart].sort((a, b) => a - b));
    expect(ticketsLeft(sandbox.stateDir)).toEqual([]);
    expect(sandbox.ours()).toEqual([]);
  });

  it('--slots 3: never more than 3 at once, and 3 is reached', async () => {
    sandbox = new TestSandbox();
    const log = join(sandbox.dir, 'stamps.log');
    const env = { SEQ_TEST_KEY: `slots-${sandbox.marker}` };
    const runs = Array.from({ length: 12 }, () =>
      sandbox.start(['run', '--quiet', '--slots', '3', '--', ...job(log, 400)], { env }),
    );
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual(Array(12).fill(0));
    const all = spans(log);
    expect(maxOverlap(all)).toBe(3);
    expect(ticketsLeft(sandbox.stateDir)).toEqual([]);
  });
});
