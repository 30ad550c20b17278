import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, type ProcessIdentity } from '../identity.js';
import { queueMemory, type TicketMemory } from '../memory/status.js';
import { findLeftovers, type RunProcess, runProcesses } from '../ownership.js';
import { processTable } from '../proc/index.js';
import { keyDirName, projectKey } from './project-key.js';
import type { TicketParent } from './protocol.js';
import { Queue, type QueueEntry, readRegularFile } from './queue.js';
import { liveRuns } from './queues.js';
import { existingStateDir, stateDirPath, stateDirScope } from './state-dir.js';

export interface TicketStatus {
  /** 1-based place in its queue. */
  position: number;
  state: 'holding' | 'waiting' | 'dead';
  token: string;
  pid: number;
  command: string;
  cwd: string;
  impl: string;
  enqueuedAt: number | null;
  startedAt: number | null;
  /** How long it waited (holders) or has been waiting (waiters). */
  waitedMs: number | null;
  /** How long it has held. */
  heldMs: number | null;
  /** Resident memory and process count of the run's tree (holders only). */
  rssBytes: number | null;
  processes: number | null;
  /** Predicted peak and live memory (Pss) of the run's tree, and why the head waits (`--slots auto`). */
  memory?: TicketMemory;
  /** The process that started the owner, as its ticket recorded it (null: an older writer recorded none). */
  parent: TicketParent | null;
  /**
   * The owner (waiting or holding) has been re-parented: the process that started it is gone, so nobody
   * reads its result (`timeout 60 npx jest` killed npx). False for dead tickets and unknown parents.
   */
  reparented: boolean;
  /** Runs queued inside this holder (re-entrant calls). */
  nested: TicketStatus[];
  file: string;
}

export interface QueueStatus {
  key: string;
  dir: string;
  tickets: TicketStatus[];
}

export interface StatusReport {
  stateDir: string;
  queues: QueueStatus[];
  /**
   * Processes still carrying the token of a run that is gone, of this state dir's runs only (the ones
   * `seq-test reap` with the same environment ends).
   */
  leftovers: RunProcess[];
}

/**
 * A read-only view of one key's queue (or all of them); nothing is removed or signalled. The state dir is
 * validated as `run` validates it (an unsafe one is an error, never shown as idle), but not created.
 */
export function readStatus(
  options: {
    key?: string | undefined;
    allKeys?: boolean;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    withLeftovers?: boolean;
  } = {},
): StatusReport {
  const env = options.env ?? process.env;
  const existing = existingStateDir(env);
  const stateDir = existing ?? stateDirPath(env);
  const dirs: { key: string; dir: string }[] = [];
  if (options.allKeys) {
    for (const name of safeList(stateDir)) {
      if (!name.startsWith('q-')) continue;
      const dir = join(stateDir, name);
      dirs.push({ key: readKey(dir) ?? name, dir });
    }
  } else {
    const key = projectKey({ key: options.key, cwd: options.cwd, env });
    dirs.push({ key, dir: join(stateDir, keyDirName(key)) });
  }
  const now = Date.now();
  const queues = dirs.map(({ key, dir }) => {
    const queue = new Queue(dir);
    return { key, dir, tickets: queue.exists() ? describeQueue(queue, now) : [] };
  });
  const leftovers =
    options.withLeftovers === false
      ? []
      : findLeftovers({ scope: stateDirScope(env), liveRuns: existing ? liveRuns(existing) : [] });
  return { stateDir, queues, leftovers };
}

function describeQueue(queue: Queue, now: number): TicketStatus[] {
  const { tickets } = queue.read();
  let position = 0;
  const memory = queueMemory(tickets);
  return tickets.map((entry) => ({
    ...describeTicket(queue, entry, entry.alive ? ++position : 0, now),
    ...(memory.has(entry.token) ? { memory: memory.get(entry.token) } : {}),
  }));
}

function describeTicket(queue: Queue, entry: QueueEntry, position: number, now: number): TicketStatus {
  const t = entry.ticket;
  const startedAt = t?.startedAt ?? null;
  const state = !entry.alive ? 'dead' : startedAt !== null ? 'holding' : 'waiting';
  const enqueuedAt = t?.enqueuedAt ?? null;
  let rssBytes: number | null = null;
  let processes: number | null = null;
  if (state === 'holding') {
    // The owner itself is seq-test (or the test runner holding the lock); count its whole tree.
    const tree = runProcesses({ tokens: [entry.token], root: entry.owner });
    rssBytes = tree.reduce((sum, p) => sum + p.rssBytes, 0);
    processes = tree.length;
  }
  const nestedQueue = queue.nested(entry.token);
  return {
    position,
    state,
    token: entry.token,
    pid: entry.owner.pid,
    command: t?.command ?? '(unreadable ticket)',
    cwd: t?.cwd ?? '',
    impl: t?.impl ?? 'unknown',
    enqueuedAt,
    startedAt,
    waitedMs: enqueuedAt === null ? null : (startedAt ?? now) - enqueuedAt,
    heldMs: startedAt === null ? null : now - startedAt,
    rssBytes,
    processes,
    parent: t?.parent ?? null,
    reparented: entry.alive && t?.parent !== undefined && isReparented(entry.owner, t.parent),
    nested: nestedQueue.exists() ? describeQueue(nestedQueue, now) : [],
    file: entry.file,
  };
}

/**
 * Whether the owner's parent is no longer the one it recorded. Its ppid changes only when that parent dies
 * (a re-parenting), so ppid == 1 is never the test: under a subreaper (systemd --user, tmux, our helper)
 * an orphan gets another parent, and a run started by init itself was never orphaned.
 */
function isReparented(owner: ProcessIdentity, parent: TicketParent): boolean {
  const info = processTable().get(owner.pid);
  if (!info) return false; // gone since it was read alive: a dead ticket now
  // Both: a later parent can reuse the first one's pid, and only the start time tells them apart.
  return info.ppid !== parent.pid || !isAlive(parent);
}

/** The key file's line; never follows a symlink or waits on a FIFO planted there. */
function readKey(dir: string): string | undefined {
  try {
    return readRegularFile(join(dir, 'key'))?.trim() || undefined;
  } catch {
    return undefined;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
