import { isGone, processTable } from './proc/index.js';
import { startInOurClock } from './time-namespace.js';

/** A process named by pid and start time: pids are reused, the pair is not (within one boot). */
export interface ProcessIdentity {
  pid: number;
  start: number;
}

export function identityOf(pid: number): ProcessIdentity | undefined {
  const info = processTable().get(pid);
  return isGone(info) || !info ? undefined : { pid, start: info.start };
}

/**
 * True while the very process we recorded still runs (same pid, same start time, not a zombie). A start time
 * recorded inside another time namespace is translated to ours before it is compared.
 */
export function isAlive(identity: ProcessIdentity): boolean {
  const info = processTable().get(identity.pid);
  if (isGone(info) || !info) return false;
  return info.start === identity.start || info.start === startInOurClock(identity.pid, identity.start);
}

/** Sends a signal only if the process is still the one we recorded; returns whether it was sent. */
export function signalIdentity(identity: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!isAlive(identity)) return false;
  try {
    process.kill(identity.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * The parent of `of` (default: this process) as it is now: pid, start time and short name (for a ticket's
 * `parent` field; a launched `seq-test run` asks for its launcher's, the ticket's owner). Undefined when
 * there is none to name (ppid 0) or it cannot be read.
 */
export function parentIdentity(of: number = process.pid): (ProcessIdentity & { name: string }) | undefined {
  const pid = of === process.pid ? process.ppid : (processTable().get(of)?.ppid ?? 0);
  if (pid < 1) return undefined;
  const info = processTable().get(pid);
  return isGone(info) || !info ? undefined : { pid, start: info.start, name: info.comm };
}
