import type { StatusReport, TicketStatus } from '@seq-test/core/internal';
import { describe, expect, it } from 'vitest';
import {
  afterCancel,
  afterRefresh,
  initialUi,
  type KeyName,
  keyNames,
  pressKey,
  type UiState,
} from '../../packages/cli/src/monitor/controls.js';
import { buildLines, clip, visibleWindow } from '../../packages/cli/src/monitor/model.js';

/** The monitor's key and layout rules, as plain functions over a status report (no terminal needed). */

function ticket(
  pid: number,
  state: TicketStatus['state'],
  position: number,
  nested: TicketStatus[] = [],
): TicketStatus {
  return {
    position,
    state,
    token: `${pid}.1000.0123456789ab`,
    pid,
    command: `cmd ${pid}`,
    cwd: '/work',
    impl: 'node',
    enqueuedAt: 0,
    startedAt: state === 'holding' ? 1 : null,
    waitedMs: 1,
    heldMs: state === 'holding' ? 1 : null,
    rssBytes: state === 'holding' ? 1024 : null,
    processes: state === 'holding' ? 2 : null,
    parent: null,
    reparented: false,
    nested,
    file: `/state/q-x/tickets/00000000000${position}-${pid}.1000.0123456789ab.json`,
  };
}

function report(tickets: TicketStatus[]): StatusReport {
  return { stateDir: '/state', queues: [{ key: '/work', dir: '/state/q-x', tickets }], leftovers: [] };
}

function press(ui: UiState, r: StatusReport, keys: KeyName[], cancelled: string[] = []) {
  const cancel = (token: string) => {
    cancelled.push(token);
  };
  let state = ui;
  let quit = false;
  for (const key of keys) {
    const result = pressKey(state, key, r, cancel);
    state = result.ui;
    quit ||= result.quit;
  }
  return { ui: state, quit };
}

const chars = (text: string): KeyName[] => [...text].map((char) => ({ char }));

describe('monitor controls', () => {
  const holder = ticket(10, 'holding', 1, [ticket(11, 'holding', 1), ticket(12, 'waiting', 2)]);
  const waiter = ticket(20, 'waiting', 2);
  const r = report([holder, waiter]);

  it('lists nested runs under their holder and selects in screen order', () => {
    expect(buildLines(r).map((l) => (l.kind === 'ticket' ? `${'>'.repeat(l.depth)}${l.ticket.pid}` : l.kind))).toEqual([
      'key',
      '10',
      '>11',
      '>12',
      '20',
    ]);
    const ui = initialUi(r);
    expect(ui.selection.token).toBe(holder.token);
    expect(press(ui, r, chars('jjj')).ui.selection.token).toBe(waiter.token);
    expect(press(ui, r, ['last', 'up']).ui.selection.token).toBe(ticket(12, 'waiting', 2).token);
    expect(press(ui, r, chars('jjjjjjjj')).ui.selection.token).toBe(waiter.token);
    expect(press(ui, r, chars('Gg')).ui.selection.token).toBe(holder.token);
  });

  it('cancels the selected run, holding or waiting, only after y, one at a time, and says how it ended', () => {
    const cancelled: string[] = [];
    const ui = initialUi(r);
    const no = press(ui, r, [...chars('Gc'), 'escape', ...chars('cn')], cancelled);
    expect(cancelled).toEqual([]);
    expect(no.ui.confirm).toBeNull();
    const asked = press(ui, r, chars('c'), cancelled);
    expect(asked.ui.confirm).toMatchObject({ token: holder.token, state: 'holding' });
    const yes = press(ui, r, chars('cy'), cancelled);
    expect(cancelled).toEqual([holder.token]);
    expect(yes.ui.pending?.token).toBe(holder.token);
    expect(yes.ui.message?.text).toContain(`cancelling pid ${holder.pid}`);
    // A second cancel waits for the first.
    press(yes.ui, r, chars('Gcy'), cancelled);
    expect(cancelled).toEqual([holder.token]);
    const done = afterCancel(yes.ui, holder.token, {
      cancelled: true,
      pid: holder.pid,
      token: holder.token,
      was: 'holding',
      command: holder.command,
      signal: 'SIGKILL',
      leftovers: [],
      ticketRemoved: true,
    });
    expect(done.pending).toBeNull();
    expect(done.message).toEqual({
      text: `cancelled pid ${holder.pid} (holding: ${holder.command}): ended by SIGKILL; its ticket is gone`,
      tone: 'good',
    });
    const refused = afterCancel(yes.ui, holder.token, { cancelled: false, pid: holder.pid, reason: 'no' });
    expect(refused.message).toEqual({ text: 'not cancelled: no', tone: 'bad' });
    const dead = report([ticket(30, 'dead', 0)]);
    expect(press(initialUi(dead), dead, chars('c')).ui.message?.text).toContain('is dead');
  });

  it('drops a confirmation when the run starts holding meanwhile; keeps the selection nearby when a run leaves', () => {
    const ui = press(initialUi(r), r, chars('Gc')).ui;
    expect(ui.confirm?.pid).toBe(20);
    const nowHolding = report([ticket(20, 'holding', 1)]);
    const after = afterRefresh(ui, nowHolding);
    expect(after.confirm).toBeNull();
    expect(after.message?.text).toContain('holds the lock now: press c again');
    const onNested = press(initialUi(r), r, chars('jj')).ui;
    expect(afterRefresh(onNested, report([holder])).selection.token).toBe(ticket(12, 'waiting', 2).token);
    expect(afterRefresh(onNested, report([ticket(10, 'holding', 1), waiter])).selection.token).toBe(waiter.token);
  });

  it('quits on q and Ctrl-C; reads fast-typed text one key at a time', () => {
    const keys = { upArrow: false, downArrow: false, home: false, end: false, ctrl: false, escape: false };
    expect(keyNames('c', { ...keys, ctrl: true })).toEqual(['interrupt']);
    expect(keyNames('jk', keys)).toEqual([{ char: 'j' }, { char: 'k' }]);
    expect(press(initialUi(r), r, chars('q')).quit).toBe(true);
    expect(press(initialUi(r), r, ['interrupt']).quit).toBe(true);
  });

  it('fits text to columns and scrolls the selection into view', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('/a/long/path', 7, 'middle')).toBe('/a/…ath');
    expect(clip('ab', 4)).toBe('ab  ');
    expect(visibleWindow(10, 9, 4)).toEqual({ start: 6, end: 10 });
    expect(visibleWindow(10, 0, 4)).toEqual({ start: 0, end: 4 });
    expect(visibleWindow(3, 2, 4)).toEqual({ start: 0, end: 3 });
  });
});
