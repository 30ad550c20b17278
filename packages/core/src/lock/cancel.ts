import { basename } from 'node:path';
import { isAlive, type ProcessIdentity, signalIdentity } from '../identity.js';
import { processTable } from '../proc/index.js';
import { parseTicket, parseTicketName } from './protocol.js';
import { readRegularFile } from './queue.js';

export type CancelOutcome =
  | { cancelled: true; pid: number; signal: 'SIGTERM' }
  | { cancelled: false; pid: number | null; reason: string };

/**
 * Asks the owner of a *waiting* ticket to leave its queue: SIGTERM to the owner, which withdraws its ticket
 * and exits (a waiting `seq-test run` exits 143; the plugins and the pytest bridge leave on SIGTERM too,
 * docs/PROTOCOL.md "Leaving"). Right before the signal it re-reads the ticket and re-checks the owner's pid
 * and start time (from the ticket's name), so it never signals a holder, a dead ticket's reused pid, or
 * anything that is not the ticket's owner.
 *
 * Limit, stated honestly: the owner may start holding in the instant between our last check and the signal
 * (the last check and the kill are one /proc read apart). A `seq-test run` hit at that moment treats the
 * SIGTERM as it treats any: it releases the lock, ending its command if that had already started.
 */
export function cancelWaitingTicket(file: string): CancelOutcome {
  const parsed = parseTicketName(basename(file));
  if (!parsed) return { cancelled: false, pid: null, reason: `${basename(file)} is not a ticket file` };
  const owner: ProcessIdentity = { pid: parsed.pid, start: parsed.start };
  const refuse = (reason: string): CancelOutcome => ({ cancelled: false, pid: owner.pid, reason });
  if (!isAlive(owner))
    return refuse(`pid ${owner.pid} is gone: the next waiter or \`seq-test reap\` removes its ticket`);
  // The ticket is read last, right before the signal, to keep the waiting -> holding window small.
  let text: string | undefined;
  try {
    text = readRegularFile(file);
  } catch {
    return refuse(`pid ${owner.pid} already left the queue`);
  }
  const ticket = text === undefined ? undefined : parseTicket(text);
  if (!ticket || ticket.token !== parsed.token) {
    return refuse(`the ticket of pid ${owner.pid} is unreadable, so it may be holding: not cancelled`);
  }
  if (ticket.startedAt !== null) return refuse(`pid ${owner.pid} holds the lock now: only waiting runs are cancelled`);
  if (ticket.boot && ticket.boot !== processTable().bootId()) {
    return refuse(`the ticket of pid ${owner.pid} is from an earlier boot (dead): \`seq-test reap\` removes it`);
  }
  if (!signalIdentity(owner, 'SIGTERM')) return refuse(`pid ${owner.pid} exited before it could be signalled`);
  return { cancelled: true, pid: owner.pid, signal: 'SIGTERM' };
}
