import { join } from 'node:path';
import { type QueueEntry, readRegularFile, writeAtomic } from './queue.js';

/**
 * How long a queue's recent runs held their slot (`<queue dir>/pace`, docs/PROTOCOL.md "Pace"). A run that
 * joins far back uses it to guess how long it will wait, and so whether handing its wait over to the
 * launcher pays: the launcher waits for ~1 MiB instead of Node's ~10, but Node must start again before the
 * turn, and in a queue of short runs those start-ups (~100 ms of CPU each) land on the handoffs of the runs
 * ahead. Advisory: a missing, unreadable or strange file means "not known", and the wait is handed over as
 * it always was.
 */
export const PACE_FILE = 'pace';
const PACE_VERSION = 1;
/** Hold times kept: the most recent ones. */
const PACE_KEEP = 8;
/** Fewer recorded holds than this say too little to keep a far waiter in Node. */
const PACE_MIN_KNOWN = 3;
/** A wait expected to be shorter than this stays in Node: its ~10 MiB are held for seconds only. */
export const HAND_OVER_FROM_MS = 5000;
/** Beyond this many live tickets ahead, a wait is handed over whatever the pace: memory adds up per waiter. */
export const NODE_WAITERS_AT_MOST = 32;
/** Larger hold times than this (a week) are garbage, not a pace. */
const MAX_HOLD_MS = 7 * 24 * 3600 * 1000;

/** The recorded hold times in ms, oldest first; empty when there are none or the file is not usable. */
export function readPace(queueDir: string): number[] {
  try {
    const text = readRegularFile(join(queueDir, PACE_FILE));
    if (text === undefined) return [];
    const data = JSON.parse(text) as { v?: unknown; holdsMs?: unknown };
    if (data?.v !== PACE_VERSION || !Array.isArray(data.holdsMs)) return [];
    return data.holdsMs
      .filter((ms): ms is number => typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= MAX_HOLD_MS)
      .slice(-PACE_KEEP);
  } catch {
    return [];
  }
}

/**
 * Adds one run's hold time. Best effort and unlocked: two runs leaving at once may lose one of the two
 * figures, which only makes the pace a little older.
 */
export function recordHold(queueDir: string, writer: string, heldMs: number): void {
  if (!(Number.isFinite(heldMs) && heldMs >= 0)) return;
  try {
    const holdsMs = [...readPace(queueDir), Math.round(heldMs)].slice(-PACE_KEEP);
    writeAtomic(queueDir, join(queueDir, PACE_FILE), writer, { v: PACE_VERSION, holdsMs });
  } catch {}
}

/**
 * How long a waiter with `ahead` live tickets before it should expect to wait, from the median recorded hold:
 * a holder that has held for `t` so far is expected to hold for max(median − t, t) more (a run already
 * longer than usual is likely a long one), a waiter ahead for the median, shared among `slots`.
 * Undefined when too few holds are recorded.
 */
export function expectedWaitMs(
  holdsMs: number[],
  ahead: QueueEntry[],
  slots: number,
  now = Date.now(),
): number | undefined {
  if (holdsMs.length < PACE_MIN_KNOWN) return undefined;
  const sorted = [...holdsMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  let total = 0;
  for (const entry of ahead) {
    const startedAt = entry.ticket?.startedAt;
    if (typeof startedAt === 'number') {
      const held = Math.max(0, now - startedAt);
      total += Math.max(median - held, held);
    } else {
      total += median;
    }
  }
  return total / Math.max(1, slots);
}

/** Whether a waiter far from the head should hand its wait over, given what the pace says. */
export function worthHandingOver(queueDir: string, ahead: QueueEntry[], slots: number): boolean {
  if (ahead.length > NODE_WAITERS_AT_MOST) return true;
  const expected = expectedWaitMs(readPace(queueDir), ahead, slots);
  return expected === undefined || expected >= HAND_OVER_FROM_MS;
}
