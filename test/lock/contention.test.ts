import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { TestSandbox, waitFor } from '../support/processes.js';

interface Span {
  /** The job's name: its SEQ_TEST_TICKET, or the arrival index the test gave it. */
  id: string;
  start: number;
  end: number;
}

/**
 * Each job appends "S <id> <ns>" and "E <id> <ns>" lines to the log (<id>: $JOB_ID, else its ticket); in
 * between it sleeps `ms`, after waiting for the file `gate` if one is given.
 */
function job(log: string, ms: number, gate?: string): string[] {
  const seconds = (ms / 1000).toFixed(3);
  const id = '$' + '{JOB_ID:-$SEQ_TEST_TICKET}';
  const wait = gate ? `until [ -e ${gate} ]; do sleep 0.01; done; ` : '';
  return [
    'bash',
    '-c',
    `echo "S ${id} $(date +%s%N)" >> ${log}; ${wait}sleep ${seconds}; echo "E ${id} $(date +%s%N)" >> ${log}`,
  ];
}

function spans(log: string): Span[] {
  const byId = new Map<string, Partial<Span>>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, id, ns] = line.split(' ') as [string, string, string];
    const span = byId.get(id) ?? { id };
    if (kind === 'S') span.start = Number(BigInt(ns) / 1000n);
    else span.end = Number(BigInt(ns) / 1000n);
    byId.set(id, span);
  }
  return [...byId.values()] as Span[];
}

/** Tickets in the queue of `key` (written once a contender has its place: its arrival). */
function queued(stateDir: string, key: string): number {
  const dir = join(stateDir, keyDirName(key), 'tickets');
  return existsSync(dir) ? readdirSync(dir).filter((name) => !name.startsWith('.tmp-')).length : 0;
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

  // All at once: which of them gets in first is a race, so this checks only exclusion and bookkeeping; the
  // order is the next test's.
  it('20 contenders at once: no overlap, all succeed, nothing left', async () => {
    sandbox = new TestSandbox();
    const log = join(sandbox.dir, 'stamps.log');
    const env = { SEQ_TEST_KEY: `contention-${sandbox.marker}` };
    const runs = Array.from({ length: 20 }, () =>
      sandbox.start(['run', '--quiet', '--', ...job(log, 10 + Math.floor(Math.random() * 90))], { env }),
    );
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual(Array(20).fill(0));
    const all = spans(log);
    expect(all).toHaveLength(20);
    expect(maxOverlap(all)).toBe(1);
    expect(ticketsLeft(sandbox.stateDir)).toEqual([]);
    expect(sandbox.ours()).toEqual([]);
  });

  // FIFO means served in the order they arrived. Ticket numbers cannot stand in for that order: they start
  // again at 1 whenever the queue drains. So a holder keeps the queue from draining (the gate) while the
  // contenders join one at a time, each only once the previous one's ticket is in the queue; then the gate
  // opens and the service order must be the arrival order.
  it('15 contenders joining one by one behind a holder are served in arrival order', async () => {
    sandbox = new TestSandbox();
    const log = join(sandbox.dir, 'stamps.log');
    const gate = join(sandbox.dir, 'gate');
    const key = `fifo-${sandbox.marker}`;
    const env = { SEQ_TEST_KEY: key };
    const holder = sandbox.start(['run', '--quiet', '--', 'bash', '-c', `until [ -e ${gate} ]; do sleep 0.01; done`], {
      env,
    });
    // Generous: process start-up on a loaded 2-core machine; these wait for events, not for time.
    await waitFor(() => queued(sandbox.stateDir, key) === 1, 60_000, 'the holder to take the lock');
    const contenders = [];
    for (let arrival = 0; arrival < 15; arrival++) {
      const ms = 10 + Math.floor(Math.random() * 90);
      contenders.push(
        sandbox.start(['run', '--quiet', '--', ...job(log, ms)], { env: { ...env, JOB_ID: `${arrival}` } }),
      );
      await waitFor(() => queued(sandbox.stateDir, key) === arrival + 2, 60_000, `contender ${arrival} to join`);
    }
    writeFileSync(gate, '');
    expect((await holder.finished).code).toBe(0);
    const results = await Promise.all(contenders.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual(Array(15).fill(0));
    const all = spans(log);
    expect(maxOverlap(all)).toBe(1);
    const served = [...all].sort((a, b) => a.start - b.start).map((s) => Number(s.id));
    expect(served).toEqual([...Array(15).keys()]);
    expect(ticketsLeft(sandbox.stateDir)).toEqual([]);
    expect(sandbox.ours()).toEqual([]);
  });

  // The first three hold their slots until the gate opens, so reaching 3 does not depend on how fast a
  // loaded machine starts processes.
  it('--slots 3: never more than 3 at once, and 3 is reached', async () => {
    sandbox = new TestSandbox();
    const log = join(sandbox.dir, 'stamps.log');
    const gate = join(sandbox.dir, 'gate');
    const env = { SEQ_TEST_KEY: `slots-${sandbox.marker}` };
    const runs = Array.from({ length: 12 }, () =>
      sandbox.start(['run', '--quiet', '--slots', '3', '--', ...job(log, 50, gate)], { env }),
    );
    const started = () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('S '))
        : [];
    // Generous: twelve process start-ups on a loaded 2-core machine.
    await waitFor(() => started().length === 3, 120_000, 'three jobs to hold the three slots');
    writeFileSync(gate, '');
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual(Array(12).fill(0));
    const all = spans(log);
    expect(maxOverlap(all)).toBe(3);
    expect(ticketsLeft(sandbox.stateDir)).toEqual([]);
  });
});
