import type { QueueEntry } from '../lock/queue.js';
import { admissionFor, ticketAdmission } from './auto.js';
import { type MemoryMeasure, treeMemory } from './measure.js';

/** What `seq-test status` shows about a ticket's memory. */
export interface TicketMemory {
  /** `auto`: the ticket was written in `--slots auto` mode (protocol version 2). */
  mode: 'auto' | 'fixed';
  /** Predicted peak of the run's tree, null when unknown (or a fixed-slots ticket). */
  predictedBytes: number | null;
  /** The tree's memory now (holders), null for waiters. */
  liveBytes: number | null;
  measure: MemoryMeasure | null;
  /** For the first waiting auto ticket: why it waits, as the admission rule says right now. */
  waitReason?: string;
}

/** Memory of every live ticket in a queue (in queue order), keyed by token. */
export function queueMemory(tickets: readonly QueueEntry[]): Map<string, TicketMemory> {
  const result = new Map<string, TicketMemory>();
  const live = tickets.filter((t) => t.alive);
  let headSeen = false;
  for (const [index, entry] of live.entries()) {
    const admission = ticketAdmission(entry.ticket);
    const holding = entry.ticket ? entry.ticket.startedAt !== null : true;
    const memory: TicketMemory = {
      mode: admission ? 'auto' : 'fixed',
      predictedBytes: admission?.predictedBytes ?? null,
      liveBytes: null,
      measure: null,
    };
    if (holding) {
      const tree = treeMemory(entry.owner.pid);
      memory.liveBytes = tree.bytes;
      memory.measure = tree.measure;
    } else if (!headSeen) {
      headSeen = true;
      if (admission) {
        const settings = {
          ...(admission.budgetBytes !== null ? { budgetBytes: admission.budgetBytes } : {}),
          ...(admission.reserveBytes !== null ? { reserveBytes: admission.reserveBytes } : {}),
        };
        const verdict = admissionFor(
          live.slice(0, index),
          admission.predictedBytes,
          admission.maxSlots,
          settings,
          entry.owner.pid,
        );
        memory.waitReason = verdict.admit ? 'about to be admitted' : verdict.text;
      }
    }
    result.set(entry.token, memory);
  }
  return result;
}
