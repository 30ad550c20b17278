import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cancelRunByToken, readStatus, type TicketStatus } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';

/** core's cancelRunByToken, what the monitor's `c` runs, against real runs. */

let sandbox: TestSandbox | undefined;

afterEach(() => {
  sandbox?.cleanup();
  sandbox = undefined;
});

function startTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('cancelRunByToken', () => {
  it('a waiting run leaves and exits 143; then the holder: its command ends with it, its ticket goes; twice is refused', async () => {
    const box = new TestSandbox();
    sandbox = box;
    const key = `cancel-${box.marker}`;
    const env = box.env({ SEQ_TEST_KEY: key });
    const status = () => readStatus({ key, env, withLeftovers: false });
    const tickets = (): TicketStatus[] => status().queues[0]?.tickets ?? [];
    const holder = box.start(['run', '--', 'sleep', '300'], { env: { SEQ_TEST_KEY: key } });
    const held = await waitFor(() => tickets().find((t) => t.state === 'holding'), 10_000, 'the holder');
    const waiter = box.start(['run', '--', 'true'], { env: { SEQ_TEST_KEY: key } });
    const waiting = await waitFor(() => tickets().find((t) => t.state === 'waiting'), 10_000, 'the waiter');
    expect(waiting.pid).toBe(waiter.child.pid);
    const sleep = await waitFor(
      () => box.ours().find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1') === 'sleep\x00300\x00'),
      10_000,
      'the holder command',
    );

    const stateDir = status().stateDir;
    const left = await cancelRunByToken(stateDir, waiting.token);
    expect(left).toMatchObject({ cancelled: true, pid: waiter.child.pid, was: 'waiting', signal: 'SIGTERM' });
    expect((await waiter.finished).code).toBe(143);
    expect(tickets().map((t) => [t.pid, t.state])).toEqual([[holder.child.pid, 'holding']]);
    expect(isAlive(holder.child.pid as number)).toBe(true);
    const again = await cancelRunByToken(stateDir, waiting.token);
    expect(again).toMatchObject({ cancelled: false, pid: null });

    const ended = await cancelRunByToken(stateDir, held.token);
    expect(ended).toMatchObject({ cancelled: true, pid: holder.child.pid, was: 'holding', ticketRemoved: true });
    expect((await holder.finished).code).toBe(143);
    expect(isAlive(sleep)).toBe(false);
    expect(tickets()).toEqual([]);
  });

  it('never signals a live process whose start time differs from the ticket (a reused pid): tidies the dead ticket', async () => {
    const box = new TestSandbox();
    sandbox = box;
    const bystander = box.start(['300'], { file: '/bin/sleep' });
    const pid = bystander.child.pid as number;
    await waitFor(() => isAlive(pid) && startTime(pid) > 0, 5_000, 'the bystander');
    const queue = join(box.stateDir, 'q-0123456789abcdef01234567');
    mkdirSync(join(queue, 'tickets'), { recursive: true, mode: 0o700 });
    // A holding ticket that names the bystander's pid with another start time: a dead run whose pid was reused.
    const token = `${pid}.${startTime(pid) - 1}.0123456789ab`;
    const file = join(queue, 'tickets', `000000000001-${token}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ v: 1, token, pid, start: startTime(pid) - 1, boot: '', number: 1, startedAt: 1 })}\n`,
    );
    const outcome = await cancelRunByToken(box.stateDir, token);
    expect(outcome).toMatchObject({ cancelled: true, pid, was: 'dead', signal: null, ticketRemoved: true });
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(pid)).toBe(true);
    expect(bystander.child.exitCode).toBeNull();
  });
});
