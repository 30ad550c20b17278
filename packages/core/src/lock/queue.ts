import { randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { SeqTestError } from '../errors.js';
import { isAlive, type ProcessIdentity } from '../identity.js';
import { processTable } from '../proc/index.js';
import {
  PROTOCOL_VERSION,
  parseMarkerName,
  parseTicket,
  parseTicketName,
  type Ticket,
  ticketFileName,
} from './protocol.js';

export interface QueueEntry {
  name: string;
  file: string;
  number: number;
  token: string;
  owner: ProcessIdentity;
  /** Undefined when the file could not be read or parsed (its name still tells the owner). */
  ticket: Ticket | undefined;
  alive: boolean;
}

export interface QueueState {
  /** Every ticket, in queue order (number, then token). */
  tickets: QueueEntry[];
  /** Tokens of live processes that are between "choosing" and "ticket written". */
  choosing: string[];
  deadMarkers: string[];
}

export interface Decision {
  holding: boolean;
  /** 1-based place among live tickets. */
  position: number;
  ahead: QueueEntry[];
  /** Another process is choosing its number: wait for it (bakery rule). */
  blockedByChoosing: boolean;
  /** Our own ticket vanished (removed by hand, or by a tool that thought us dead). */
  lost: boolean;
}

export type TicketDraft = Omit<Ticket, 'v' | 'number' | 'startedAt'>;

/** Files left by a writer that died between write and rename are removed after this long. */
const STALE_TEMP_MS = 10_000;

/**
 * One queue directory: tickets/, choosing/ and nested/ (docs/PROTOCOL.md). Ordering follows Lamport's
 * bakery algorithm: a process announces itself in choosing/, takes max+1 as its number, writes its ticket,
 * then withdraws the announcement; nobody decides while a live process is choosing, so a latecomer can
 * never slip in ahead of a ticket that already holds.
 */
export class Queue {
  readonly ticketsDir: string;
  readonly choosingDir: string;
  readonly nestedDir: string;
  private readonly warned = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.ticketsDir = join(dir, 'tickets');
    this.choosingDir = join(dir, 'choosing');
    this.nestedDir = join(dir, 'nested');
  }

  /** Creates the queue's directories; a damaged queue (a file where a directory belongs) is a clear error. */
  ensure(): this {
    for (const d of [this.dir, this.ticketsDir, this.choosingDir]) {
      try {
        mkdirSync(d, { recursive: true, mode: 0o700 });
        if (!lstatSync(d).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      } catch (error) {
        throw new SeqTestError(
          `the queue dir ${this.dir} is damaged (${d}: ${(error as NodeJS.ErrnoException).code ?? error}); remove it with rm -rf ${this.dir} (no run of this key may be active) and try again`,
        );
      }
    }
    return this;
  }

  /** The queue of runs started inside the holder with this token. */
  nested(token: string): Queue {
    return new Queue(join(this.nestedDir, token), this.warn);
  }

  enqueue(draft: TicketDraft): QueueEntry {
    this.ensure();
    const marker = join(this.choosingDir, `${draft.token}.json`);
    writeAtomic(this.choosingDir, marker, {
      v: PROTOCOL_VERSION,
      token: draft.token,
      pid: draft.pid,
      start: draft.start,
      boot: draft.boot,
    });
    try {
      const highest = this.read().tickets.reduce((max, t) => Math.max(max, t.number), 0);
      const number = highest + 1;
      const ticket: Ticket = { ...draft, v: PROTOCOL_VERSION, number, startedAt: null };
      const name = ticketFileName(number, draft.token);
      const file = join(this.ticketsDir, name);
      writeAtomic(this.ticketsDir, file, ticket);
      return {
        name,
        file,
        number,
        token: draft.token,
        owner: { pid: draft.pid, start: draft.start },
        ticket,
        alive: true,
      };
    } finally {
      unlinkQuiet(marker);
    }
  }

  /** Reads the queue without changing it. Garbage is reported once and skipped (or judged by its name). */
  read(): QueueState {
    // Bakery order: who is choosing first, then the numbers. Read the other way round, a contender that
    // writes its ticket and withdraws its marker between the two listings is seen in neither (two holders).
    const choosing: string[] = [];
    const deadMarkers: string[] = [];
    for (const name of listDir(this.choosingDir)) {
      const file = join(this.choosingDir, name);
      if (name.startsWith('.tmp-')) {
        removeIfStale(file);
        continue;
      }
      const parsed = parseMarkerName(name);
      if (!parsed) {
        this.warnOnce(name, `ignoring foreign file ${file}`);
        continue;
      }
      (isAlive(parsed) ? choosing : deadMarkers).push(parsed.token);
    }
    const boot = processTable().bootId();
    const tickets: QueueEntry[] = [];
    for (const name of listDir(this.ticketsDir)) {
      const file = join(this.ticketsDir, name);
      if (name.startsWith('.tmp-')) {
        removeIfStale(file);
        continue;
      }
      const parsed = parseTicketName(name);
      if (!parsed) {
        this.warnOnce(name, `ignoring foreign file ${file}`);
        continue;
      }
      const { ticket, problem, gone } = readTicket(file);
      if (gone) continue; // released between readdir and read
      if (problem) this.warnOnce(name, `ticket ${file}: ${problem}`);
      if (ticket && ticket.v > PROTOCOL_VERSION) {
        this.warnOnce(
          `${name}:v`,
          `ticket ${file} is protocol version ${ticket.v} (we speak ${PROTOCOL_VERSION}); honouring its place and owner`,
        );
      }
      const owner = { pid: parsed.pid, start: parsed.start };
      const alive = isAlive(owner) && (!ticket?.boot || ticket.boot === boot);
      tickets.push({ name, file, number: parsed.number, token: parsed.token, owner, ticket, alive });
    }
    tickets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { tickets, choosing, deadMarkers };
  }

  /**
   * Removes dead tickets and markers. `reapRun` is awaited for each dead ticket before its file goes, so the
   * next holder never starts while the dead run's leftovers still run.
   */
  async tidy(state: QueueState, reapRun: (token: string) => Promise<void>): Promise<QueueEntry[]> {
    for (const token of state.deadMarkers) unlinkQuiet(join(this.choosingDir, `${token}.json`));
    const dead = state.tickets.filter((t) => !t.alive);
    for (const entry of dead) {
      await reapRun(entry.token);
      removeQuiet(entry.file);
      removeQuiet(join(this.nestedDir, entry.token));
    }
    return dead;
  }

  decide(state: QueueState, mine: QueueEntry, slots: number): Decision {
    const live = state.tickets.filter((t) => t.alive);
    const index = live.findIndex((t) => t.name === mine.name);
    const ahead = index === -1 ? [] : live.slice(0, index);
    const blockedByChoosing = state.choosing.some((token) => token !== mine.token);
    return {
      holding: index !== -1 && !blockedByChoosing && ahead.length < slots,
      position: index + 1,
      ahead,
      blockedByChoosing,
      lost: index === -1,
    };
  }

  /**
   * The cheap check for the wake-ups between full reads: two directory listings and a /proc read per
   * ticket ahead, no ticket file read. Answers only when a full read + decide() would answer the same:
   * - not holding, with the names of the tickets ahead of ours: a live choosing marker other than ours,
   *   or `slots` live tickets ahead of ours (checked in order, stopping there);
   * - holding: no live choosing marker, and every ticket ahead alive but fewer than `slots` of them.
   * Undefined for anything else (a dead ticket ahead to tidy, our ticket gone), left to the full read.
   * Listing choosing/ before tickets/ keeps the bakery order of read().
   */
  quickCheck(mine: QueueEntry, slots: number): { holding: false; ahead: string[] } | { holding: true } | undefined {
    let choosing = false;
    for (const name of listDir(this.choosingDir)) {
      const parsed = parseMarkerName(name);
      if (parsed && parsed.token !== mine.token && isAlive(parsed)) choosing = true;
    }
    const names = listDir(this.ticketsDir)
      .filter((name) => parseTicketName(name) !== undefined)
      .sort();
    const index = names.indexOf(mine.name);
    if (index === -1) return undefined;
    const ahead = names.slice(0, index);
    if (choosing) return { holding: false, ahead };
    let alive = 0;
    for (const name of ahead) {
      const parsed = parseTicketName(name);
      if (!parsed || !isAlive(parsed)) return undefined;
      if (++alive >= slots) return { holding: false, ahead };
    }
    return { holding: true };
  }

  markStarted(mine: QueueEntry, startedAt = Date.now()): void {
    if (!mine.ticket) return;
    mine.ticket = { ...mine.ticket, startedAt };
    writeAtomic(this.ticketsDir, mine.file, mine.ticket);
  }

  /** Leaves the queue: our ticket and the nested queue of our run go. Idempotent. */
  remove(mine: Pick<QueueEntry, 'file' | 'token'>): void {
    unlinkQuiet(mine.file);
    removeQuiet(join(this.nestedDir, mine.token));
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.warn(message);
  }
}

/** Writers never expose a half-written file: write a temp file in the same directory, then rename. */
export function writeAtomic(dir: string, file: string, data: unknown): void {
  const temp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  writeFileSync(temp, `${JSON.stringify(data)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    renameSync(temp, file);
  } catch (error) {
    unlinkQuiet(temp);
    throw error;
  }
}

function readTicket(file: string): { ticket?: Ticket; problem?: string; gone?: boolean } {
  try {
    if (!lstatSync(file).isFile()) return { problem: 'not a regular file; judged by its name only' };
    const ticket = parseTicket(readFileSync(file, 'utf8'));
    return ticket ? { ticket } : { problem: 'unreadable content (garbage or truncated); judged by its name only' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { gone: true };
    return { problem: `cannot read (${code}); judged by its name only` };
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function removeIfStale(file: string): void {
  try {
    if (Date.now() - lstatSync(file).mtimeMs > STALE_TEMP_MS) unlinkSync(file);
  } catch {}
}

/** Best effort: a damaged entry that cannot be removed must not stop anyone from leaving or joining. */
function removeQuiet(path: string): void {
  try {
    // Usually there is nothing to remove (a run with no nested calls has no nested queue): a plain
    // rmdir/unlink answers that without loading the recursive remover (a millisecond in a fresh process).
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTDIR') {
        unlinkSync(path);
        return;
      }
    }
    rmSync(path, { recursive: true, force: true });
  } catch {}
}

export function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
}
