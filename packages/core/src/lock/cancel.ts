import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SeqTestError } from '../errors.js';
import { isAlive, type ProcessIdentity } from '../identity.js';
import { type EndedProcess, endProcesses, findLeftovers, type RunProcess } from '../ownership.js';
import type { Queue, QueueEntry } from './queue.js';
import { liveRuns, visitQueues } from './queues.js';

/**
 * Cancelling a run (`seq-test cancel`, the monitor's `c`): the owner of a waiting or holding ticket is ended
 * with core's one ending policy (endProcesses: SIGTERM, SIGKILL after the grace, every signal after a
 * pid + start time check), then whatever still carries the run's token is reaped as `seq-test reap` would,
 * and the ticket goes. SIGTERM first because every owner (`seq-test run`, the plugins, the pytest bridge)
 * treats it as an interrupt: it ends its own run's processes and leaves the queue. The KILL is for a hung
 * one (the case of issue 15: a re-parented Jest nobody waits for).
 */

/** Between SIGTERM and SIGKILL: an owner's own ending (its run's processes, with their own 1 s grace) fits. */
export const CANCEL_GRACE_MS = 5000;

/** A ticket found in the state dir, with the queue that holds it. */
export interface FoundRun {
  stateDir: string;
  queue: Queue;
  entry: QueueEntry;
}

export type CancelOutcome =
  | {
      cancelled: true;
      pid: number;
      token: string;
      /** What the run was doing when cancelled; `dead`: its owner was already gone (only tidied up). */
      was: 'waiting' | 'holding' | 'dead';
      command: string;
      /** The last signal the owner got; null when it was gone before any (dead, or it exited first). */
      signal: NodeJS.Signals | null;
      /** Processes that still carried the run's token once the owner was gone, and how they were ended. */
      leftovers: EndedProcess[];
      /** The ticket is gone (the owner's own exit removes it; we remove what it left). */
      ticketRemoved: boolean;
    }
  | { cancelled: false; pid: number | null; reason: string };

/** A token, `<number>-<token>` ($SEQ_TEST_TICKET), a ticket file name or path. */
const TOKEN_ARG = /^(?:.*\/)?(?:\d{12}-)?(\d+\.\d+\.[0-9a-f]{6,64})(?:\.json)?$/;

/**
 * The run a `seq-test cancel` argument names: a pid (the owner's), a token, or a ticket (name or path, or
 * $SEQ_TEST_TICKET). Looked up among the state dir's own queues by token, never trusted as a path.
 * Anything else is a SeqTestError (exit 125) saying what to give instead.
 */
export function findRunToCancel(target: string, stateDir: string | undefined): FoundRun {
  const text = target.trim();
  const pid = /^\d+$/.test(text) ? Number(text) : undefined;
  const token = pid === undefined ? TOKEN_ARG.exec(text)?.[1] : undefined;
  if ((pid === undefined || !Number.isSafeInteger(pid) || pid < 1) && token === undefined) {
    throw new SeqTestError(
      `"${target}" is not a pid, a run token or a ticket: give one that \`seq-test status --all-keys\` shows, e.g. seq-test cancel 4242`,
    );
  }
  const found: FoundRun[] = [];
  if (stateDir !== undefined) {
    visitQueues(stateDir, (queue, state) => {
      for (const entry of state.tickets) {
        if (token !== undefined ? entry.token === token : entry.owner.pid === pid)
          found.push({ stateDir, queue, entry });
      }
    });
  }
  // Prefer a live owner: a dead ticket can name a pid that was reused since.
  const live = found.filter((f) => f.entry.alive);
  const candidates = live.length > 0 ? live : found;
  if (candidates.length === 1) return candidates[0] as FoundRun;
  if (candidates.length > 1) {
    throw new SeqTestError(
      `pid ${pid} owns ${candidates.length} tickets (${candidates.map((f) => f.entry.token).join(', ')}): name one, e.g. seq-test cancel ${candidates[0]?.entry.token}`,
    );
  }
  const list = '`seq-test status --all-keys` lists the runs';
  if (token !== undefined)
    throw new SeqTestError(`no ticket with token ${token} in ${stateDir ?? 'the state dir'}: ${list}`);
  const uid = processUid(pid as number);
  if (uid === undefined) throw new SeqTestError(`no process has pid ${pid}, and no ticket names it: ${list}`);
  if (uid !== ourUid()) {
    throw new SeqTestError(otherUser(pid as number, uid));
  }
  throw new SeqTestError(`pid ${pid} neither holds nor waits for a lock of yours: ${list} (give the owner's pid)`);
}

/** Cancels the run of `token` found in `stateDir` (the monitor's path: it knows the ticket it shows). */
export async function cancelRunByToken(
  stateDir: string,
  token: string,
  options: { graceMs?: number } = {},
): Promise<CancelOutcome> {
  let run: FoundRun | undefined;
  visitQueues(stateDir, (queue, state) => {
    const entry = state.tickets.find((t) => t.token === token);
    if (entry && !run) run = { stateDir, queue, entry };
  });
  if (!run) return { cancelled: false, pid: null, reason: 'its ticket is gone: the run already left the queue' };
  return cancelRun(run, options);
}

/**
 * Ends a run and clears up after it (see the module comment). Refused, with nothing signalled, when its
 * owner is another user's process.
 */
export async function cancelRun(run: FoundRun, options: { graceMs?: number } = {}): Promise<CancelOutcome> {
  const { stateDir, queue, entry } = run;
  const { owner, token } = entry;
  const graceMs = options.graceMs ?? CANCEL_GRACE_MS;
  const command = entry.ticket?.command ?? '(unreadable ticket)';
  const was = !entry.alive ? 'dead' : entry.ticket && entry.ticket.startedAt === null ? 'waiting' : 'holding';
  let signal: NodeJS.Signals | null = null;
  if (was !== 'dead') {
    const uid = processUid(owner.pid);
    if (uid !== undefined && uid !== ourUid()) {
      return {
        cancelled: false,
        pid: owner.pid,
        reason: otherUser(owner.pid, uid),
      };
    }
    const target: RunProcess = { ...owner, command, rssBytes: 0, token };
    signal = (await endProcesses([target], graceMs))[0]?.signal ?? null;
    // SIGKILL is not instant (a process in uninterruptible sleep takes its time); the leftovers wait for it.
    if (!(await gone(owner, 2000))) {
      return {
        cancelled: false,
        pid: owner.pid,
        reason: `pid ${owner.pid} is still there after SIGKILL (uninterruptible sleep?): try again, or see /proc/${owner.pid}/stack`,
      };
    }
  }
  // A run nested inside this one is ended in one round, its own processes in the next (they name it).
  const leftovers: EndedProcess[] = [];
  for (let round = 0; round < 5; round++) {
    const found = findLeftovers({ token, liveRuns: liveRuns(stateDir) });
    if (found.length === 0) break;
    leftovers.push(...(await endProcesses(found, graceMs)));
  }
  const left = queue.read().tickets.find((t) => t.token === token);
  if (left && !left.alive) queue.remove(left);
  const ticketRemoved = !queue.read().tickets.some((t) => t.token === token);
  return { cancelled: true, pid: owner.pid, token, was, command, signal, leftovers, ticketRemoved };
}

async function gone(identity: ProcessIdentity, withinMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (isAlive(identity)) {
    if (performance.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

function otherUser(pid: number, uid: number): string {
  return `pid ${pid} is another user's process${uid >= 0 ? ` (uid ${uid})` : ''}: seq-test cancels only your own runs`;
}

function ourUid(): number | undefined {
  return process.getuid?.();
}

/** The uid a process runs as; undefined when there is no such process. */
function processUid(pid: number): number | undefined {
  if (process.platform === 'linux') {
    // The real uid from status: /proc/<pid> itself belongs to root for a non-dumpable process of ours.
    try {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
      return uid === undefined ? undefined : Number(uid);
    } catch {
      return undefined;
    }
  }
  // Elsewhere: signal 0 tells ours (allowed) from another user's (EPERM) without a `ps`.
  try {
    process.kill(pid, 0);
    return ourUid();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? -1 : undefined;
  }
}
