import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cancelWaitingTicket, readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';

/** core's cancelWaitingTicket, the only thing the monitor signals with, against real runs. */

let sandbox: TestSandbox | undefined;

afterEach(() => {
  sandbox?.cleanup();
  sandbox = undefined;
});

function startTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('cancelWaitingTicket', () => {
  it('signals a waiting run, which leaves and exits 143; refuses the holder, twice, and files that are not tickets', async () => {
    const box = new TestSandbox();
    sandbox = box;
    const key = `cancel-${box.marker}`;
    const env = box.env({ SEQ_TEST_KEY: key });
    const tickets = (): TicketStatus[] => readStatus({ key, env, withLeftovers: false }).queues[0]?.tickets ?? [];
    const holder = box.start(['run', '--', 'sleep', '30'], { env: { SEQ_TEST_KEY: key } });
    const held = await waitFor(() => tickets().find((t) => t.state === 'holding'), 10_000, 'the holder');
    const waiter = box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    const waiting = await waitFor(() => tickets().find((t) => t.state === 'waiting'), 10_000, 'the waiter');
    expect(waiting.pid).toBe(waiter.child.pid);

    const refused = cancelWaitingTicket(held.file);
    expect(refused).toMatchObject({ cancelled: false, pid: holder.child.pid });
    expect(refused.cancelled ? '' : refused.reason).toContain('holds the lock');
    expect(cancelWaitingTicket(join(box.dir, 'not-a-ticket.json'))).toMatchObject({ cancelled: false, pid: null });

    expect(cancelWaitingTicket(waiting.file)).toEqual({ cancelled: true, pid: waiter.child.pid, signal: 'SIGTERM' });
    const ended = await waiter.finished;
    expect(ended.code).toBe(143);
    expect(tickets().map((t) => [t.pid, t.state])).toEqual([[holder.child.pid, 'holding']]);
    const again = cancelWaitingTicket(waiting.file);
    expect(again.cancelled).toBe(false);

    expect(isAlive(holder.child.pid as number)).toBe(true);
    expect(holder.child.exitCode).toBeNull();
  });

  it('never signals a live process whose start time differs from the ticket (a reused pid)', async () => {
    const box = new TestSandbox();
    sandbox = box;
    const bystander = box.start(['30'], { file: '/bin/sleep' });
    const pid = bystander.child.pid as number;
    await waitFor(() => isAlive(pid) && startTime(pid) > 0, 5_000, 'the bystander');
    const dir = join(box.dir, 'tickets');
    mkdirSync(dir, { recursive: true });
    // A waiting ticket that names the bystander's pid with another start time: a dead run whose pid was reused.
    const token = `${pid}.${startTime(pid) - 1}.0123456789ab`;
    const file = join(dir, `000000000001-${token}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ v: 1, token, pid, start: startTime(pid) - 1, boot: '', number: 1, startedAt: null })}\n`,
    );
    const outcome = cancelWaitingTicket(file);
    expect(outcome).toMatchObject({ cancelled: false, pid });
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(pid)).toBe(true);
    expect(bystander.child.exitCode).toBeNull();
  });
});
