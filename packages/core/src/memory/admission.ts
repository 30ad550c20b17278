import { formatBytes } from '../units.js';

/**
 * The admission rule of `--slots auto` (docs/PROTOCOL.md, version 2, "Admission"): a pure function of
 * what the head of the queue knows at one moment, so that every implementation (and `seq-test status`)
 * decides the same way and the rule can be tested on every case.
 *
 * The head is admitted when, in this order:
 *  1. no live ticket ahead of it is still waiting (FIFO: no overtaking, no backfill);
 *  2. fewer than `maxSlots` tickets hold;
 *  3. nothing holds (a run alone is always admitted: waiting would not make memory appear); otherwise
 *  4. the head's peak is predicted (nothing known: at most one holder), and so is every holder's whose
 *     command still runs;
 *  5. need ≤ free − reserve − growth, where growth is what the holders are still predicted to grow by
 *     (Σ max(0, predicted − current) over the holders whose command still runs: one whose command has
 *     ended, its leftovers lingering, cannot grow to its peak any more) and free is MemAvailable now (which
 *     already excludes the holders' current use, lingering leftovers included), or, with a budget,
 *     budget − Σ current. need is the head's predicted peak less its own tree's memory now when free is
 *     MemAvailable (the waiting head's process is part of the tree whose peak was recorded, and already
 *     out of MemAvailable: counted in full it would be charged twice), its whole predicted peak with a budget.
 * Any figure that is not a finite number ≥ 0 makes the head wait (rule "invalid"): garbage never admits.
 */
export interface HolderMemory {
  /** Predicted peak of the holder's tree (bytes), null when its command is unknown. */
  predictedBytes: number | null;
  /** Its tree's memory now (bytes), null when it cannot be measured (then it is assumed to be at 0). */
  currentBytes: number | null;
  /**
   * Its command has ended (the ticket's `admission.endedAt`): only leftovers may still run, until the
   * runner ends them and the holder leaves. Such a holder is charged no growth.
   */
  commandEnded?: boolean;
}

export interface AdmissionInput {
  maxSlots: number;
  /** Live tickets ahead of the head that do not hold yet. */
  waitingAhead: number;
  holders: HolderMemory[];
  /** Predicted peak of the head's run, null when nothing is known about its command. */
  headPredictedBytes: number | null;
  /**
   * The head's own tree's memory now (its waiting process: seq-test, or the test runner holding the lock),
   * null or absent when not measured (then nothing is taken off its need).
   */
  headCurrentBytes?: number | null;
  /** Memory the machine has available now (MemAvailable or the cgroup's headroom). */
  availableBytes: number | null;
  /** A fixed budget for the key (`--memory-budget`), replacing `availableBytes`. */
  budgetBytes?: number | null;
  reserveBytes: number;
}

export type AdmissionReason =
  | 'fifo'
  | 'max-slots'
  | 'alone'
  | 'unknown-head'
  | 'unknown-holder'
  | 'fits'
  | 'memory'
  | 'invalid';

export interface AdmissionVerdict {
  admit: boolean;
  reason: AdmissionReason;
  /** Memory left for the head: free − reserve − growth (set from rule 5 on). */
  roomBytes?: number;
  /** What the head still needs (its predicted peak, less its current memory without a budget; rule 5 on). */
  needBytes?: number;
  /** One line for the wait line and `seq-test status`. */
  text: string;
}

const valid = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

export function decideAdmission(input: AdmissionInput): AdmissionVerdict {
  const { holders } = input;
  if (
    !Number.isSafeInteger(input.maxSlots) ||
    input.maxSlots < 1 ||
    !Number.isSafeInteger(input.waitingAhead) ||
    input.waitingAhead < 0
  ) {
    return { admit: false, reason: 'invalid', text: 'invalid admission settings; waiting' };
  }
  if (input.waitingAhead > 0) {
    return {
      admit: false,
      reason: 'fifo',
      text: `${input.waitingAhead} run(s) ahead still waiting (first in, first out)`,
    };
  }
  if (holders.length >= input.maxSlots) {
    return {
      admit: false,
      reason: 'max-slots',
      text: `${holders.length} run(s) hold, the most allowed (--max-slots ${input.maxSlots})`,
    };
  }
  if (holders.length === 0) return { admit: true, reason: 'alone', text: 'nothing else holds' };
  if (input.headPredictedBytes === null) {
    return { admit: false, reason: 'unknown-head', text: 'no memory history for this command yet: it runs alone once' };
  }
  // Growth comes only from holders whose command still runs; one that ended cannot grow, known or not.
  const growing = holders.filter((h) => !h.commandEnded);
  if (growing.some((h) => h.predictedBytes === null)) {
    return { admit: false, reason: 'unknown-holder', text: 'a holder has no memory history: waiting until it ends' };
  }
  const figures = [
    input.headPredictedBytes,
    input.reserveBytes,
    ...growing.map((h) => h.predictedBytes),
    ...holders.map((h) => h.currentBytes ?? 0),
  ];
  const budget = input.budgetBytes ?? null;
  const headCurrent = budget === null ? (input.headCurrentBytes ?? 0) : 0;
  if (budget !== null) figures.push(budget);
  else figures.push(input.availableBytes as number, headCurrent);
  if (!figures.every(valid)) {
    return { admit: false, reason: 'invalid', text: 'a memory figure is unreadable or invalid; waiting' };
  }
  const growth = growing.reduce((sum, h) => sum + Math.max(0, (h.predictedBytes as number) - (h.currentBytes ?? 0)), 0);
  const free =
    budget !== null
      ? budget - holders.reduce((sum, h) => sum + (h.currentBytes ?? 0), 0)
      : (input.availableBytes as number);
  const room = free - input.reserveBytes - growth;
  const need = Math.max(0, input.headPredictedBytes - headCurrent);
  const text = `needs ~${formatBytes(need)}, ${formatBytes(Math.max(0, room))} available above the reserve${growth > 0 ? ` (holders still expected to grow by ${formatBytes(growth)})` : ''}`;
  return need <= room
    ? { admit: true, reason: 'fits', roomBytes: room, needBytes: need, text }
    : { admit: false, reason: 'memory', roomBytes: room, needBytes: need, text };
}
