import type { WaitInfo } from './lock/acquire.js';
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
  return `waiting for the ${info.nested ? 'nested ' : ''}lock on ${info.key}: position ${info.position} of ${info.queueLength}, ${holderText}; waited ${formatDuration(info.waitedMs)}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
