import type { CancelOutcome, StatusReport, TicketStatus } from '@seq-test/core/internal';
import { summarizeCancel } from '../commands/cancel.js';
import { buildLines, findTicket, move, reselect, selectable } from './model.js';

/**
 * What the keys do, as plain functions over the monitor's UI state: the React component only feeds them keys
 * and snapshots. Cancelling is the one side effect: it is passed in, started here, and its outcome comes
 * back through afterCancel.
 */
export interface Confirm {
  token: string;
  state: TicketStatus['state'];
  pid: number;
  position: number;
  command: string;
}

export interface Message {
  text: string;
  tone: 'info' | 'good' | 'bad';
}

export interface UiState {
  /** The selected ticket, and its place in the list (kept so the selection stays nearby when it leaves). */
  selection: { token: string | null; index: number };
  /** A cancel waiting for y/n. */
  confirm: Confirm | null;
  message: Message | null;
  /** A run being cancelled, until its cancel reports back. */
  pending: { token: string; pid: number } | null;
}

export const KEYS_HELP = '↑/↓ or k/j select · g/G first/last · c cancel the selected run · q or Ctrl-C quit';

export function initialUi(report: StatusReport): UiState {
  return afterRefresh({ selection: { token: null, index: 0 }, confirm: null, message: null, pending: null }, report);
}

export type KeyName = 'up' | 'down' | 'first' | 'last' | 'interrupt' | 'escape' | 'other' | { char: string };

/** Ink's key event as key names. Plain text arrives in one piece when keys come fast: one name per character. */
export function keyNames(
  input: string,
  key: { upArrow: boolean; downArrow: boolean; home: boolean; end: boolean; ctrl: boolean; escape: boolean },
): KeyName[] {
  if (key.ctrl && input === 'c') return ['interrupt'];
  if (key.upArrow) return ['up'];
  if (key.downArrow) return ['down'];
  if (key.home) return ['first'];
  if (key.end) return ['last'];
  if (key.escape) return ['escape'];
  if (key.ctrl || input === '') return ['other'];
  return [...input].map((char) => ({ char }));
}

export interface KeyResult {
  ui: UiState;
  quit: boolean;
}

export function pressKey(
  ui: UiState,
  name: KeyName,
  report: StatusReport,
  /** Starts cancelling the run of a token; its outcome comes back through afterCancel. */
  cancel: (token: string) => void,
): KeyResult {
  const same = { ui, quit: false };
  const char = typeof name === 'object' ? name.char : null;
  if (name === 'interrupt') return { ...same, quit: true };

  if (ui.confirm) {
    const { confirm } = ui;
    if (char !== 'y' && char !== 'Y') {
      return {
        ...same,
        ui: { ...ui, confirm: null, message: { text: `pid ${confirm.pid} not cancelled`, tone: 'info' } },
      };
    }
    if (ui.pending) {
      const text = `pid ${confirm.pid} not cancelled: still cancelling pid ${ui.pending.pid}…`;
      return { ...same, ui: { ...ui, confirm: null, message: { text, tone: 'info' } } };
    }
    cancel(confirm.token);
    const next: UiState = {
      ...ui,
      confirm: null,
      message: { text: `cancelling pid ${confirm.pid}: SIGTERM, then SIGKILL if it is still there…`, tone: 'info' },
      pending: { token: confirm.token, pid: confirm.pid },
    };
    return { ui: next, quit: false };
  }

  const tokens = selectable(buildLines(report));
  const selected = reselect(tokens, ui.selection);
  const select = (token: string | null): KeyResult => ({
    ...same,
    ui: { ...ui, selection: { token, index: token === null ? 0 : tokens.indexOf(token) } },
  });
  if (char === 'q') return { ...same, quit: true };
  if (name === 'up' || char === 'k') return select(move(tokens, selected, -1));
  if (name === 'down' || char === 'j') return select(move(tokens, selected, 1));
  if (name === 'first' || char === 'g') return select(tokens[0] ?? null);
  if (name === 'last' || char === 'G') return select(tokens[tokens.length - 1] ?? null);
  if (char !== 'c') return same;

  const ticket = findTicket(report, selected);
  const say = (text: string, tone: Message['tone'] = 'bad') => ({ ...same, ui: { ...ui, message: { text, tone } } });
  if (!ticket) return say('nothing selected', 'info');
  if (ticket.state === 'dead') return say(`pid ${ticket.pid} is dead: the next waiter or \`seq-test reap\` removes it`);
  return {
    ...same,
    ui: {
      ...ui,
      message: null,
      confirm: {
        token: ticket.token,
        state: ticket.state,
        pid: ticket.pid,
        position: ticket.position,
        command: ticket.command,
      },
    },
  };
}

/**
 * After each refresh: follow the selected ticket as it moves up the queue; drop a confirmation whose run
 * changed meanwhile (it left, died, or started holding: the question asked is no longer the one answered).
 */
export function afterRefresh(ui: UiState, report: StatusReport): UiState {
  let next = ui;
  const tokens = selectable(buildLines(report));
  const selected = reselect(tokens, ui.selection);
  const index = selected === null ? 0 : tokens.indexOf(selected);
  if (selected !== ui.selection.token || index !== ui.selection.index) {
    next = { ...next, selection: { token: selected, index } };
  }
  if (next.confirm) {
    const { confirm } = next;
    const current = findTicket(report, confirm.token);
    if (current?.state !== confirm.state) {
      const why = !current
        ? 'left the queue by itself: not cancelled'
        : current.state === 'holding'
          ? 'holds the lock now: press c again to cancel it'
          : 'is dead: not cancelled';
      next = { ...next, confirm: null, message: { text: `pid ${confirm.pid} ${why}`, tone: 'info' } };
    }
  }
  return next;
}

/** A cancel started by pressKey has ended: say how, in one line. */
export function afterCancel(ui: UiState, token: string, outcome: CancelOutcome): UiState {
  const pending = ui.pending?.token === token ? null : ui.pending;
  const message: Message = outcome.cancelled
    ? { text: summarizeCancel(outcome), tone: 'good' }
    : { text: `not cancelled: ${outcome.reason}`, tone: 'bad' };
  return { ...ui, pending, message };
}
