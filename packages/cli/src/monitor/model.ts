import {
  formatBytes,
  formatDuration,
  type RunProcess,
  type StatusReport,
  type TicketStatus,
} from '@seq-test/core/internal';

/**
 * The monitor's screen as a flat list of lines, built from one `readStatus` snapshot. Pure: no I/O, no React,
 * so the layout rules (what is shown, in which order, what can be selected) are easy to read and to test.
 */
export type Line =
  | { kind: 'key'; key: string; summary: string }
  | { kind: 'idle'; text: string }
  | { kind: 'ticket'; ticket: TicketStatus; depth: number; key: string }
  | { kind: 'leftovers'; count: number }
  | { kind: 'leftover'; process: RunProcess };

export function buildLines(report: StatusReport): Line[] {
  const lines: Line[] = [];
  // Like `seq-test status`: with --all-keys only queues that have tickets; one key is shown even when idle.
  const queues = report.queues.filter((q) => q.tickets.length > 0 || report.queues.length === 1);
  if (queues.length === 0) lines.push({ kind: 'idle', text: 'no queues: nobody holds or waits under any key' });
  for (const queue of queues) {
    lines.push({ kind: 'key', key: queue.key, summary: summarize(queue.tickets) });
    if (queue.tickets.length === 0) lines.push({ kind: 'idle', text: 'idle: nobody holds or waits' });
    const walk = (tickets: TicketStatus[], depth: number) => {
      for (const ticket of tickets) {
        lines.push({ kind: 'ticket', ticket, depth, key: queue.key });
        walk(ticket.nested, depth + 1);
      }
    };
    walk(queue.tickets, 0);
  }
  if (report.leftovers.length > 0) {
    lines.push({ kind: 'leftovers', count: report.leftovers.length });
    for (const process of report.leftovers) lines.push({ kind: 'leftover', process });
  }
  return lines;
}

function summarize(tickets: TicketStatus[]): string {
  const all: TicketStatus[] = [];
  const walk = (list: TicketStatus[]) => {
    for (const t of list) {
      all.push(t);
      walk(t.nested);
    }
  };
  walk(tickets);
  const count = (state: TicketStatus['state']) => all.filter((t) => t.state === state).length;
  const parts = [`${count('holding')} holding`, `${count('waiting')} waiting`];
  if (count('dead') > 0) parts.push(`${count('dead')} dead`);
  // Nested runs live inside their holder's tree, so only top-level holders are added up.
  const top = tickets.filter((t) => t.state === 'holding');
  const bytes = top.reduce((sum, t) => sum + (t.rssBytes ?? 0), 0);
  const procs = top.reduce((sum, t) => sum + (t.processes ?? 0), 0);
  if (top.length > 0) parts.push(`${formatBytes(bytes)} in ${procs} process(es)`);
  return parts.join(' · ');
}

/** Tokens of the selectable lines (tickets), in screen order. */
export function selectable(lines: Line[]): string[] {
  return lines.flatMap((line) => (line.kind === 'ticket' ? [line.ticket.token] : []));
}

/**
 * Keeps the selection on the same ticket across refreshes (tickets come and go above it); when that ticket is
 * gone, stays at the same place in the list, clamped.
 */
export function reselect(tokens: string[], previous: { token: string | null; index: number }): string | null {
  if (tokens.length === 0) return null;
  if (previous.token !== null && tokens.includes(previous.token)) return previous.token;
  return tokens[Math.min(Math.max(previous.index, 0), tokens.length - 1)] ?? null;
}

export function move(tokens: string[], current: string | null, delta: number): string | null {
  if (tokens.length === 0) return null;
  const at = current === null ? -1 : tokens.indexOf(current);
  const next = at === -1 ? (delta > 0 ? 0 : tokens.length - 1) : at + delta;
  return tokens[Math.min(Math.max(next, 0), tokens.length - 1)] ?? null;
}

/** The slice of lines that fits in `height`, scrolled so that line `focus` is visible. */
export function visibleWindow(total: number, focus: number, height: number): { start: number; end: number } {
  if (total <= height || height <= 0) return { start: 0, end: Math.min(total, Math.max(height, 0)) };
  const start = Math.min(Math.max(focus - Math.floor(height / 2), 0), total - height);
  return { start, end: start + height };
}

export function findTicket(report: StatusReport, token: string | null): TicketStatus | undefined {
  if (token === null) return undefined;
  const walk = (list: TicketStatus[]): TicketStatus | undefined => {
    for (const t of list) {
      if (t.token === token) return t;
      const inner = walk(t.nested);
      if (inner) return inner;
    }
    return undefined;
  };
  for (const queue of report.queues) {
    const found = walk(queue.tickets);
    if (found) return found;
  }
  return undefined;
}

/** Column texts of one ticket row. */
export function ticketCells(t: TicketStatus): {
  state: string;
  position: string;
  pid: string;
  waited: string;
  held: string;
  memory: string;
  procs: string;
} {
  const dash = '-';
  return {
    state: t.state,
    position: t.position > 0 ? `#${t.position}` : dash,
    pid: String(t.pid),
    waited: t.waitedMs === null ? dash : formatDuration(t.waitedMs),
    held: t.heldMs === null ? dash : formatDuration(t.heldMs),
    memory: t.rssBytes === null ? dash : formatBytes(t.rssBytes),
    procs: t.processes === null ? dash : String(t.processes),
  };
}

/** Cuts `text` to `width` columns with an ellipsis; `middle` keeps both ends (for paths). */
export function clip(text: string, width: number, where: 'end' | 'middle' = 'end'): string {
  const chars = [...text];
  if (width <= 0) return '';
  if (chars.length <= width) return text.padEnd(width + (text.length - chars.length));
  if (width === 1) return '…';
  if (where === 'middle') {
    const head = Math.ceil((width - 1) / 2);
    const tail = width - 1 - head;
    return `${chars.slice(0, head).join('')}…${tail > 0 ? chars.slice(-tail).join('') : ''}`;
  }
  return `${chars.slice(0, width - 1).join('')}…`;
}
