import { NO_LIVE_LINE_REPORT_MS, WAIT_REPORT_MS, type WaitInfo } from './lock/acquire.js';
import { SAY_PREFIX } from './say.js';
import { formatDuration } from './units.js';

/**
 * The one-line description of a wait in the queue, shared by `seq-test run` and the test-runner
 * integrations so that every waiter prints the same line, e.g.
 * `waiting for the lock on /home/me/app: position 2 of 2, held by pid 4242 (npm test) for 3.1 s; waited 0.8 s`.
 */
export function describeWait(info: WaitInfo, now = Date.now()): string {
  const holder = info.ahead[0];
  const holderText = holder
    ? `${holder.ticket?.startedAt ? 'held' : 'next'} by pid ${holder.owner.pid}${holder.ticket?.command ? ` (${truncate(holder.ticket.command, 60)})` : ''}` +
      (holder.ticket?.startedAt ? ` for ${formatDuration(now - holder.ticket.startedAt)}` : '')
    : 'another process is joining';
  return `waiting for the ${info.nested ? 'nested ' : ''}lock on ${info.key}: position ${info.position} of ${info.queueLength}, ${holderText}; waited ${formatDuration(info.waitedMs)}${info.admission ? `; ${info.admission}` : ''}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The queue line while a waiter (`seq-test run`, the Vitest plugin, the Jest integration) waits for the
 * lock: on a terminal one line rewritten in place; elsewhere (CI logs, pipes) one line when waiting starts
 * and, from done(), one when the turn comes.
 */
export class WaitLine {
  private shown = false;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  /** Whether the line is redrawn while waiting (a terminal, not quiet): it then wants frequent updates. */
  get live(): boolean {
    return this.tty && !this.quiet;
  }

  /**
   * acquireLock's `waitReportMs` for this line: a live line is redrawn every 250 ms; one printed once (off a
   * terminal, or quiet) needs no reports on a timer, so that the waiter sleeps until something changes.
   */
  get reportEveryMs(): number {
    return this.live ? WAIT_REPORT_MS : NO_LIVE_LINE_REPORT_MS;
  }

  update(info: WaitInfo): void {
    if (this.quiet) return;
    const text = describeWait(info);
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${SAY_PREFIX} ${text}`);
      this.shown = true;
    } else if (!this.shown) {
      this.stream.write(`${SAY_PREFIX} ${text}\n`);
      this.shown = true;
    }
  }

  /** Waiting ended: clear the live line and, if given, say how. */
  done(message: string | undefined): void {
    if (this.quiet || !this.shown) return;
    if (this.tty) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(`${SAY_PREFIX} ${message}\n`);
    this.shown = false;
  }
}
