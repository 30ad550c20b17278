import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Linux time namespaces (`unshare --time --boottime N`) shift what /proc shows: a process's start time
 * (field 22 of /proc/PID/stat) reads as the kernel's value plus the *reader's* boottime offset. A token
 * written inside such a namespace therefore names its owner with a start time that differs, as read from
 * outside, by the difference of the two namespaces' offsets (and the other way round). These helpers
 * translate; they are consulted only when a start time does not match, so the usual check costs nothing.
 */

/** USER_HZ: the unit of /proc start times. Fixed at 100 by the Linux ABI on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

let ours: { ns: string; offset: number } | undefined | null;

/**
 * The start time (in our own reading) that a process reports as `start` from its own time namespace, or
 * undefined when it shares our namespace (or nothing can be read: not Linux, a kernel without time
 * namespaces, another user's process).
 */
export function startInOurClock(pid: number, start: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  ours ??= readNamespace('self') ?? null;
  if (!ours) return undefined;
  const theirs = readNamespace(String(pid));
  if (!theirs || theirs.ns === ours.ns) return undefined;
  return start - Math.round((theirs.offset - ours.offset) * TICKS_PER_SECOND);
}

/** The time namespace's id and its boottime offset in seconds. */
function readNamespace(pid: string): { ns: string; offset: number } | undefined {
  try {
    const ns = readlinkSync(`/proc/${pid}/ns/time`);
    const line = readFileSync(`/proc/${pid}/timens_offsets`, 'latin1')
      .split('\n')
      .find((l) => l.startsWith('boottime'));
    const [, seconds, nanoseconds] = line?.trim().split(/\s+/) ?? [];
    return { ns, offset: Number(seconds ?? 0) + Number(nanoseconds ?? 0) / 1e9 };
  } catch {
    return undefined;
  }
}
