import { formatDuration, type WaitInfo } from '@seq-test/core';
import { PREFIX } from './report.js';

/**
 * The queue line shown while `seq-test run` (or a plugin) waits. On a terminal it is one line rewritten in
 * place; elsewhere (CI logs, pipes) one line when waiting starts and one when the turn comes.
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

  update(info: WaitInfo): void {
    if (this.quiet) return;
    const text = describeWait(info);
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${PREFIX} ${text}`);
      this.shown = true;
    } else if (!this.shown) {
      this.stream.write(`${PREFIX} ${text}\n`);
      this.shown = true;
    }
  }

  /** Our turn came (or waiting ended): replace or follow the line. */
  done(message: string | undefined): void {
    if (this.quiet || !this.shown) return;
    if (this.tty) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(`${PREFIX} ${message}\n`);
    this.shown = false;
  }
}

export function describeWait(info: WaitInfo): string {
  const holder = info.ahead[0];
  const now = Date.now();
  const holderText = holder
    ? `${holder.ticket?.startedAt ? 'held' : 'next'} by pid ${holder.owner.pid}${holder.ticket?.command ? ` (${truncate(holder.ticket.command, 60)})` : ''}` +
      (holder.ticket?.startedAt ? ` for ${formatDuration(now - holder.ticket.startedAt)}` : '')
    : 'another process is joining';
  return `waiting for the ${info.nested ? 'nested ' : ''}lock on ${info.key}: position ${info.position} of ${info.queueLength}, ${holderText}; waited ${formatDuration(info.waitedMs)}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
