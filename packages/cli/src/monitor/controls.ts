import { type CancelOutcome, formatDuration, type StatusReport } from '@seq-test/core/internal';
import { buildLines, findTicket, move, reselect, selectable } from './model.js';

/**
 * What the keys do, as plain functions over the monitor's UI state: the React component only feeds them keys
 * and snapshots. Cancelling is the one side effect, and it is passed in.
 */
export interface Confirm {
  token: string;
  file: string;
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
  /** A waiter we sent SIGTERM to, until it has left the queue. */
  pending: { token: string; pid: number; at: number } | null;
}

/** After a cancel, how long to wait for the owner to leave before saying it did not. */
export const LEAVE_DEADLINE_MS = 5000;

export const KEYS_HELP = '↑/↓ or k/j select · g/G first/last · c cancel the selected waiting run · q or Ctrl-C quit';

export function initialUi(report: StatusReport): UiState {
  return afterRefresh(
    { selection: { token: null, index: 0 }, confirm: null, message: null, pending: null },
    report,
    Date.now(),
  );
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
  /** Something changed on disk (a cancel): read the queue again now rather than at the next tick. */
  refresh: boolean;
}

export function pressKey(
  ui: UiState,
  name: KeyName,
  report: StatusReport,
  cancel: (ticketFile: string) => CancelOutcome,
  now: number = Date.now(),
): KeyResult {
  const same = { ui, quit: false, refresh: false };
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
    const outcome = cancel(confirm.file);
    const next: UiState = outcome.cancelled
      ? {
          ...ui,
          confirm: null,
          message: { text: `sent SIGTERM to pid ${outcome.pid}; waiting for it to leave the queue…`, tone: 'info' },
          pending: { token: confirm.token, pid: outcome.pid, at: now },
        }
      : { ...ui, confirm: null, message: { text: `not cancelled: ${outcome.reason}`, tone: 'bad' } };
    return { ui: next, quit: false, refresh: true };
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
  if (ticket.state === 'holding') return say(`pid ${ticket.pid} holds the lock: the monitor cancels only waiting runs`);
  if (ticket.state === 'dead') return say(`pid ${ticket.pid} is dead: the next waiter or \`seq-test reap\` removes it`);
  return {
    ...same,
    ui: {
      ...ui,
      message: null,
      confirm: {
        token: ticket.token,
        file: ticket.file,
        pid: ticket.pid,
        position: ticket.position,
        command: ticket.command,
      },
    },
  };
}

/**
 * After each refresh: follow the selected ticket as it moves up the queue; report the outcome of a cancel;
 * drop a confirmation whose ticket stopped waiting (it would be refused anyway).
 */
export function afterRefresh(ui: UiState, report: StatusReport, now: number): UiState {
  let next = ui;
  const tokens = selectable(buildLines(report));
  const selected = reselect(tokens, ui.selection);
  const index = selected === null ? 0 : tokens.indexOf(selected);
  if (selected !== ui.selection.token || index !== ui.selection.index) {
    next = { ...next, selection: { token: selected, index } };
  }
  if (next.pending) {
    const { pending } = next;
    const still = findTicket(report, pending.token);
    if (!still) next = { ...next, pending: null, message: { text: `pid ${pending.pid} left the queue`, tone: 'good' } };
    else if (now - pending.at > LEAVE_DEADLINE_MS) {
      next = {
        ...next,
        pending: null,
        message: {
          text: `pid ${pending.pid} got SIGTERM ${formatDuration(now - pending.at)} ago and is still in the queue (${still.state})`,
          tone: 'bad',
        },
      };
    }
  }
  if (next.confirm) {
    const { confirm } = next;
    const current = findTicket(report, confirm.token);
    if (current?.state !== 'waiting') {
      const why = !current
        ? 'left the queue by itself'
        : current.state === 'holding'
          ? 'holds the lock now'
          : 'is dead';
      next = { ...next, confirm: null, message: { text: `pid ${confirm.pid} ${why}: not cancelled`, tone: 'info' } };
    }
  }
  return next;
}
