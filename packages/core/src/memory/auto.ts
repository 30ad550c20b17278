import { cpus } from 'node:os';
import type { QueueEntry } from '../lock/queue.js';
import { type AdmissionVerdict, decideAdmission, type HolderMemory } from './admission.js';
import { type AvailableMemory, availableMemory } from './available.js';
import { type CommandIdentity, fingerprintOf, predictPeak, readHistory } from './history.js';
import { treeMemory } from './measure.js';

/**
 * `--slots auto` for one run: its ticket's `admission` field (docs/PROTOCOL.md, version 2) and the
 * admission decision made from the queue as read by the lock. The lock calls `admit` only when the plain
 * slot count (maxSlots) would let us hold; this adds the memory rule.
 */
export interface AutoSettings {
  /** At most this many holders (default: the number of cores). */
  maxSlots?: number;
  /** A fixed budget for the key instead of the machine's available memory. */
  budgetBytes?: number;
  /** Kept free (default: 5 % of the total or the budget, at least 128 MiB). */
  reserveBytes?: number;
  /** What runs, for the fingerprint. */
  what: CommandIdentity;
}

/** The `admission` field of a version-2 ticket. */
export interface TicketAdmission {
  mode: 'auto';
  maxSlots: number;
  fingerprint: string;
  /** Predicted peak of this run's tree (bytes), null when its command has no history. */
  predictedBytes: number | null;
  budgetBytes: number | null;
  reserveBytes: number | null;
  /**
   * When the run's command ended (ms since the epoch), null while it runs: set once by the owner, by
   * rewriting its ticket, when no further attempt will start; its leftovers may still linger.
   */
  endedAt: number | null;
}

const MIN_RESERVE = 128 * 1024 ** 2;
/**
 * While no ticket ahead changes, the holders' live memory is re-measured at most this often (a tree walk and
 * an smaps_rollup read per process: about 3 ms of kernel time for each Node process holding a few hundred
 * MiB; measured every 200 ms, a head waiting behind two such holders used 10 % of a core). Little is lost:
 * while holders grow within their predictions the room does not change (available memory falls by what
 * their growth falls by), and what does change it at once (a holder starts, its command ends, it leaves)
 * changes its ticket, which wakes us and is part of the cache key.
 */
const MEASURE_EVERY_MS = 1000;

export function defaultMaxSlots(): number {
  return Math.max(1, cpus().length);
}

export function defaultReserve(totalBytes: number): number {
  return Math.max(MIN_RESERVE, Math.round(totalBytes * 0.05));
}

/** Reads a ticket's admission field; undefined for a ticket without one (fixed slots, version 1) or garbage. */
export function ticketAdmission(ticket: { admission?: unknown } | undefined): TicketAdmission | undefined {
  const a = ticket?.admission;
  if (typeof a !== 'object' || a === null) return undefined;
  const f = a as Record<string, unknown>;
  const size = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0 && n <= 2 ** 50;
  if (f.mode !== 'auto' || typeof f.fingerprint !== 'string') return undefined;
  if (!(typeof f.maxSlots === 'number' && Number.isSafeInteger(f.maxSlots) && f.maxSlots >= 1)) return undefined;
  return {
    mode: 'auto',
    maxSlots: f.maxSlots,
    fingerprint: f.fingerprint,
    // A prediction that is not a believable size counts as unknown: garbage never admits anyone.
    predictedBytes: size(f.predictedBytes) ? (f.predictedBytes as number) : null,
    budgetBytes: size(f.budgetBytes) ? (f.budgetBytes as number) : null,
    reserveBytes: size(f.reserveBytes) ? (f.reserveBytes as number) : null,
    // Anything but a believable time counts as "still running": the holder is charged its full growth.
    endedAt: typeof f.endedAt === 'number' && Number.isSafeInteger(f.endedAt) && f.endedAt >= 0 ? f.endedAt : null,
  };
}

/**
 * The memory figures of the tickets ahead of a head: holders and waiters. `measure`: with each holder's
 * live tree memory (a tree walk and an smaps_rollup read per process, milliseconds for a big tree); without,
 * `currentBytes` is null.
 */
export function holdersOf(
  ahead: readonly QueueEntry[],
  measure = true,
): { holders: HolderMemory[]; waitingAhead: number } {
  const holders: HolderMemory[] = [];
  let waitingAhead = 0;
  for (const entry of ahead) {
    if (!entry.alive) continue;
    // A ticket whose content is unreadable is judged by its name: it may hold, so it counts as an unknown holder.
    if (entry.ticket && entry.ticket.startedAt === null) {
      waitingAhead++;
      continue;
    }
    const admission = ticketAdmission(entry.ticket);
    holders.push({
      predictedBytes: admission?.predictedBytes ?? null,
      currentBytes: measure ? treeMemory(entry.owner.pid).bytes : null,
      commandEnded: (admission?.endedAt ?? null) !== null,
    });
  }
  return { holders, waitingAhead };
}

/**
 * While our prediction is unknown, how often a waiter re-reads the history when no ticket ahead changes.
 * The record that makes it known is written by a holder just before it leaves (its ticket goes, which
 * wakes us and changes the key), so this is only the fallback for a writer we did not see leave.
 */
const RELEARN_EVERY_MS = 1000;

export class AutoAdmission {
  readonly maxSlots: number;
  readonly fingerprint: string;
  predictedBytes: number | null;
  private lastAt = -Infinity;
  private lastKey = '';
  private last: AdmissionVerdict | undefined;
  private learnKey = '';
  private learnAt = -Infinity;
  private readonly reported = new Set<string>();

  constructor(
    private readonly queueDir: string,
    private readonly settings: AutoSettings,
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.maxSlots = settings.maxSlots ?? defaultMaxSlots();
    this.fingerprint = fingerprintOf(settings.what);
    this.predictedBytes = this.readPrediction();
    this.learnAt = performance.now();
  }

  private readPrediction(): number | null {
    const history = readHistory(this.queueDir, this.fingerprint);
    // Each problem once: a waiter that re-reads a refused file must not repeat it every second.
    for (const problem of history.problems) {
      if (this.reported.has(problem)) continue;
      this.reported.add(problem);
      this.warn(problem);
    }
    return predictPeak(history.runs);
  }

  /**
   * While waiting with no prediction, re-reads the history when a ticket ahead changed (a holder that
   * recorded its peak has just left) or at most every RELEARN_EVERY_MS otherwise, so that the runs queued
   * behind a command's first run learn its peak once it is recorded, rather than each running alone.
   * True when a prediction was just learned: the caller rewrites its ticket's `admission` field
   * (ticketField()) so that the holders and waiters behind it see the prediction too.
   */
  relearn(ahead: readonly QueueEntry[]): boolean {
    if (this.predictedBytes !== null) return false;
    const key = ahead.map((e) => `${e.name}:${e.ticket?.startedAt ?? ''}`).join(',');
    const now = performance.now();
    if (key === this.learnKey && now - this.learnAt < RELEARN_EVERY_MS) return false;
    this.learnKey = key;
    this.learnAt = now;
    this.predictedBytes = this.readPrediction();
    if (this.predictedBytes === null) return false;
    this.last = undefined;
    return true;
  }

  ticketField(): TicketAdmission {
    return {
      mode: 'auto',
      maxSlots: this.maxSlots,
      fingerprint: this.fingerprint,
      predictedBytes: this.predictedBytes,
      budgetBytes: this.settings.budgetBytes ?? null,
      reserveBytes: this.settings.reserveBytes ?? null,
      endedAt: null,
    };
  }

  /** The last verdict given: once we hold, why we were admitted (`seq-test run --verbose` prints it). */
  get lastVerdict(): AdmissionVerdict | undefined {
    return this.last;
  }

  /**
   * The verdict for our ticket with `ahead` in front of it (only asked when fewer than maxSlots are ahead);
   * `ownerPid`: our ticket's owner, whose tree's memory is already in use (default: this process).
   */
  admit(ahead: readonly QueueEntry[], ownerPid: number = process.pid): AdmissionVerdict {
    // A ticket ahead that starts holding, ends its command or leaves changes the answer at once.
    const key = ahead
      .map((e) => `${e.name}:${e.ticket?.startedAt ?? ''}:${ticketAdmission(e.ticket)?.endedAt ?? ''}`)
      .join(',');
    const now = performance.now();
    // Same queue, measured a moment ago: the answer would hardly change in between (see MEASURE_EVERY_MS).
    if (this.last && key === this.lastKey && now - this.lastAt < MEASURE_EVERY_MS) return this.last;
    this.last = admissionFor(ahead, this.predictedBytes, this.maxSlots, this.settings, ownerPid);
    this.lastKey = key;
    this.lastAt = now;
    return this.last;
  }
}

function reserveOf(
  settings: Pick<AutoSettings, 'budgetBytes' | 'reserveBytes'>,
  available: AvailableMemory | undefined,
): number {
  return settings.reserveBytes ?? defaultReserve(settings.budgetBytes ?? available?.totalBytes ?? 0);
}

/**
 * The admission rule applied to a queue as read now (also what `seq-test status` shows for a waiting head).
 * `headPid`: the head's ticket owner, whose tree's memory now is taken off its need (undefined: nothing is).
 */
export function admissionFor(
  ahead: readonly QueueEntry[],
  predictedBytes: number | null,
  maxSlots: number,
  settings: Pick<AutoSettings, 'budgetBytes' | 'reserveBytes'>,
  headPid?: number,
  readAvailable: () => AvailableMemory | undefined = availableMemory,
): AdmissionVerdict {
  const decide = (measure: boolean) => {
    const before = readAvailable();
    const { holders, waitingAhead } = holdersOf(ahead, measure);
    const headCurrent = measure && headPid !== undefined ? treeMemory(headPid).bytes : null;
    // What a holder gains while the trees are measured (milliseconds each; a test allocating its memory)
    // would count in our favour twice: still free in the figure read before, and as less growth left to
    // come. The lower of the figures read before and after sees any such change the cautious way.
    const available = measure ? lower(before, readAvailable()) : before;
    return decideAdmission({
      maxSlots,
      waitingAhead,
      holders,
      headPredictedBytes: predictedBytes,
      headCurrentBytes: headCurrent,
      availableBytes: available?.bytes ?? null,
      budgetBytes: settings.budgetBytes ?? null,
      reserveBytes: reserveOf(settings, available),
    });
  };
  // The rules before the memory rule (FIFO, max-slots, alone, unknown) need no live memory: a head behind a
  // waiter, re-evaluating every 100 ms, must not walk and measure every holder's tree each time.
  const cheap = decide(false);
  return cheap.reason === 'fits' || cheap.reason === 'memory' ? decide(true) : cheap;
}

function lower(a: AvailableMemory | undefined, b: AvailableMemory | undefined): AvailableMemory | undefined {
  if (a === undefined || b === undefined) return undefined; // unreadable once: not a figure to admit on
  return b.bytes < a.bytes ? b : a;
}
